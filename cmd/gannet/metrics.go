package main

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/radio"
)

// The metrics are read at scrape time from the Stats of each part (the
// same counters $SYS publishes): there is no second set of counters to
// keep in step. Names follow the Prometheus conventions: a gannet_ prefix,
// base units, _total for counters, and no client ids as label values
// (labels name listeners, bridges, limits and causes: bounded sets).
// docs/operations.md lists every metric with a query for it.

// metricDesc is one metric family this collector exports.
type metricDesc struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func counter(name, help string, labels ...string) metricDesc {
	return metricDesc{prometheus.NewDesc(name, help, labels, nil), prometheus.CounterValue}
}

func gauge(name, help string, labels ...string) metricDesc {
	return metricDesc{prometheus.NewDesc(name, help, labels, nil), prometheus.GaugeValue}
}

// Every metric family, by Go name.
var (
	mBuildInfo = gauge("gannet_build_info", "Always 1; the version label is the running build.", "version")

	mSensors          = gauge("gannet_mqttsn_sensors", "MQTT-SN clients with gateway state, by state (active, asleep, awake; lost ones have none: gannet_mqttsn_sensors_lost_total).", "state")
	mUnverified       = gauge("gannet_mqttsn_unverified_sensors", "MQTT-SN clients on probation: nothing received since their CONNACK (max_unverified).")
	mSnMsgsIn         = counter("gannet_mqttsn_messages_received_total", "PUBLISHes from MQTT-SN clients the core took, by QoS (-1, 0, 1, 2).", "qos")
	mSnMsgsOut        = counter("gannet_mqttsn_messages_sent_total", "PUBLISHes sent to MQTT-SN clients, first transmissions only, by QoS (0, 1, 2).", "qos")
	mSnHeldRepeats    = counter("gannet_mqttsn_held_repeats_total", "QoS 1/2 PUBLISHes a sensor resent while the core held the first one's acknowledgement, not published again.")
	mRegistrations    = gauge("gannet_mqttsn_registrations", "Normal topic ids registered with MQTT-SN clients, over all clients.")
	mForwarded        = gauge("gannet_mqttsn_forwarded_sensors", "MQTT-SN clients behind a forwarder.")
	mForwarders       = gauge("gannet_mqttsn_forwarders", "Forwarders (distinct listener and address) with clients behind them.")
	mLost             = counter("gannet_mqttsn_sensors_lost_total", "MQTT-SN clients declared lost (keep-alive, sleep or retries expired); their wills are published.")
	mSnReceived       = counter("gannet_mqttsn_datagrams_received_total", "Datagrams the gateway read from all listeners.")
	mSnSent           = counter("gannet_mqttsn_datagrams_sent_total", "Datagrams the gateway wrote to all listeners.")
	mSnMalformed      = counter("gannet_mqttsn_malformed_datagrams_total", "Datagrams that did not decode as MQTT-SN, dropped.")
	mSnRefused        = counter("gannet_mqttsn_refused_total", "MQTT-SN messages refused or ignored, by cause.", "cause")
	mSnRetransmits    = counter("gannet_mqttsn_retransmissions_total", "REGISTER, PUBLISH and PUBREL the gateway resent after retry_interval.")
	mSnQoSMinus1      = counter("gannet_mqttsn_qos_minus_one_messages_total", "QoS -1 publishes accepted.")
	mSnMigrated       = counter("gannet_mqttsn_migrations_total", "Sleeping clients that woke from a new address (address_migration).")
	mSnV2Connects     = counter("gannet_mqttsn_v2_connects_total", "MQTT-SN 2.0 CONNECTs accepted.")
	mSnV2AuthRefused  = counter("gannet_mqttsn_v2_auth_refused_total", "MQTT-SN 2.0 CONNECTs and re-authentications refused for their authentication (unknown method, wrong user name or password).")
	mSnV2Paho         = counter("gannet_mqttsn_v2_paho_deviations_total", "MQTT-SN 2.0 packets accepted in Eclipse Paho's forms that the draft does not allow (docs/mqttsn-2.md).")
	mSnV2ProtoErrors  = counter("gannet_mqttsn_v2_protocol_errors_total", "MQTT-SN 2.0 virtual connections the gateway ended for a protocol error.")
	mSnV2Unsupported  = counter("gannet_mqttsn_v2_unsupported_total", "MQTT-SN 2.0 envelopes dropped because Gannet does not implement them or does not accept them from the sender.")
	mSnV2Rebound      = counter("gannet_mqttsn_v2_rebound_total", "MQTT-SN 2.0 clients moved to a new address by a Connection Encapsulation.")
	mSnV2Wakeups      = counter("gannet_mqttsn_v2_wakeups_total", "WAKEUPs sent to asleep MQTT-SN 2.0 clients when a message was queued for them.")
	mTpConnections    = gauge("gannet_transparent_connections", "Upstream MQTT connections held now for transparent sensors.")
	mTpConnects       = counter("gannet_transparent_connects_total", "Upstream connections established for transparent sensors.")
	mTpRefused        = counter("gannet_transparent_refused_total", "Transparent sensors refused because max_connections upstream connections were held.")
	mTpFailures       = counter("gannet_transparent_connect_failures_total", "Upstream connects that failed or that the remote broker refused.")
	mTpPublished      = counter("gannet_transparent_messages_published_total", "Transparent sensors' messages the remote broker acknowledged (QoS 1/2) or was sent (QoS 0).")
	mTpDelivered      = counter("gannet_transparent_messages_delivered_total", "Messages from the remote broker queued for transparent sensors.")
	mTpRejected       = counter("gannet_transparent_rejected_total", "Publishes and subscriptions of transparent sensors the remote broker refused.")
	mTpDropped        = counter("gannet_transparent_dropped_total", "QoS 0 publishes dropped because a sensor's upstream link had too many operations waiting.")
	mSnLimitHits      = counter("gannet_mqttsn_limit_hits_total", "Hits of each gateway limit, by its configuration key.", "limit")
	mRateAllowed      = counter("gannet_rate_limit_allowed_total", "Datagrams a rate limiter allowed.", "limiter")
	mRateLimited      = counter("gannet_rate_limit_limited_total", "Datagrams a rate limiter refused.", "limiter")
	mRateEvicted      = counter("gannet_rate_limit_evicted_total", "Sources a rate limiter forgot to make room (max_sources).", "limiter")
	mRateSources      = gauge("gannet_rate_limit_sources", "Sources a rate limiter is tracking now (for qos_minus_one: the QoS -1 sources).", "limiter")
	mRadioReceived    = counter("gannet_radio_datagrams_received_total", "Datagrams read from a listener.", "listener", "network")
	mRadioSent        = counter("gannet_radio_datagrams_sent_total", "Datagrams written to a listener.", "listener", "network")
	mRadioTruncated   = counter("gannet_radio_datagrams_truncated_total", "Datagrams longer than max_datagram, dropped.", "listener", "network")
	mRadioWriteErrors = counter("gannet_radio_write_errors_total", "Writes to a UDP listener that failed.", "listener", "network")
	mRadioSyscalls    = counter("gannet_radio_receive_syscalls_total", "Receive system calls of a UDP listener (datagrams over syscalls is the mean batch).", "listener", "network")
	mRadioSendCalls   = counter("gannet_radio_send_syscalls_total", "Send system calls of a UDP listener (datagrams sent over syscalls is the mean sendmmsg batch).", "listener", "network")
	mRadioRcvBuf      = gauge("gannet_radio_receive_buffer_bytes", "Effective SO_RCVBUF of a UDP listener as the kernel reports it.", "listener", "network")
	mRadioSndBuf      = gauge("gannet_radio_send_buffer_bytes", "Effective SO_SNDBUF of a UDP listener.", "listener", "network")
	mDTLSHandshakes   = counter("gannet_dtls_handshakes_total", "DTLS handshakes completed.", "listener")
	mDTLSFailures     = counter("gannet_dtls_handshake_failures_total", "DTLS handshakes that failed (bad key, unknown identity, bad certificate, timeout).", "listener")
	mDTLSRefused      = counter("gannet_dtls_handshakes_refused_total", "DTLS handshake attempts refused, by reason (max_handshakes, rate_limit, max_sessions).", "listener", "reason")
	mDTLSSessions     = gauge("gannet_dtls_sessions", "Established DTLS sessions.", "listener")
	mDTLSHandshaking  = gauge("gannet_dtls_handshakes_in_progress", "DTLS handshakes in progress.", "listener")
	mDTLSClosed       = counter("gannet_dtls_sessions_closed_total", "DTLS sessions closed by the gateway, by reason (replaced, idle).", "listener", "reason")
	mDTLSDropped      = counter("gannet_dtls_datagrams_dropped_total", "DTLS datagrams dropped, by reason (read_queue, no_session).", "listener", "reason")
	mDTLSReloads      = counter("gannet_dtls_reloads_total", "Credential reloads of a DTLS listener, by result (ok, failed).", "listener", "result")

	mCoreSessions    = gauge("gannet_broker_sessions", "Broker core sessions, by state (connected, offline).", "state")
	mCoreQueued      = gauge("gannet_broker_queued_messages", "Messages waiting in session queues (sleeping sensors' buffers included).")
	mCoreRetained    = gauge("gannet_broker_retained_messages", "Retained messages.")
	mCoreReceived    = counter("gannet_broker_messages_received_total", "Messages the core accepted for publishing.")
	mCoreSent        = counter("gannet_broker_messages_sent_total", "Deliveries the core handed to front-ends.")
	mCoreDropped     = counter("gannet_broker_messages_dropped_total", "Messages dropped from full session queues.")
	mCoreExpired     = counter("gannet_broker_sessions_expired_total", "Sessions ended by their expiry.")
	mCoreWills       = counter("gannet_broker_wills_published_total", "Wills published.")
	mCoreLimitHits   = counter("gannet_broker_limit_hits_total", "Hits of each broker limit, by its configuration key.", "limit")
	mCoreDenied      = counter("gannet_broker_acl_denied_total", "Refusals of the ACL (the core's Authorizer) for every client, MQTT and MQTT-SN, by action (publish, subscribe, read, will).", "action")
	mCoreHeld        = counter("gannet_broker_held_publishes_total", "QoS 1/2 publishes whose acknowledgement flow control held because a subscriber's queue was full.")
	mCoreHeldNow     = gauge("gannet_broker_held_publishes", "QoS 1/2 publishes held by flow control now.")
	mCoreFullest     = gauge("gannet_broker_queue_fullest_ratio", "Fill of the fullest session queue as a fraction of max_queued, rounded down to a tenth (0: none holds a tenth; 1: full; up to 2 under backpressure).")
	mCoreCommitErrs  = counter("gannet_broker_store_commit_errors_total", "Store commits that failed: their publishes were refused.")
	mCoreCommitTime  = metricDesc{prometheus.NewDesc("gannet_broker_store_commit_duration_seconds", "Time from a publish's store commit request to its durability, which its acknowledgement waits for.", nil, nil), prometheus.UntypedValue}
	mStoreBatches    = counter("gannet_store_commit_groups_total", "Groups of commits written together: write-ahead log records, and transactions for the bridges' updates (commits over groups is the group-commit batch).")
	mStoreCalls      = counter("gannet_store_commits_total", "Commits (the core's and the bridges') made durable in the store.")
	mStoreTxTime     = counter("gannet_store_commit_group_seconds_total", "Time from the start of each group's write to the end of the sync that made it durable.")
	mStoreSyncs      = counter("gannet_store_log_syncs_total", "fdatasyncs of the write-ahead log.")
	mStoreLogBytes   = counter("gannet_store_log_bytes_total", "Bytes of records written to the write-ahead log.")
	mStoreCkpts      = counter("gannet_store_checkpoints_total", "Checkpoints: transactions that applied logged records to the store file.")
	mStoreCkptErrs   = counter("gannet_store_checkpoint_errors_total", "Checkpoints that failed (retried).")
	mStoreCkptTime   = counter("gannet_store_checkpoint_seconds_total", "Time spent in checkpoints.")
	mStoreWaits      = counter("gannet_store_commit_waits_total", "Commits that found the store's pending queue full and waited.")
	mStoreFailed     = counter("gannet_store_commit_failures_total", "Commits whose write to the store file failed.")
	mStoreUsed       = gauge("gannet_store_used_bytes", "Bytes of the store file's pages in use.")
	mCoreUptime      = gauge("gannet_broker_uptime_seconds", "Time since the broker core started.")
	mMQTTConns       = gauge("gannet_mqtt_connections", "Open MQTT connections (TCP, TLS and WebSocket).")
	mMQTTAccepted    = counter("gannet_mqtt_connections_accepted_total", "MQTT network connections accepted.")
	mMQTTConnects    = counter("gannet_mqtt_connects_total", "MQTT CONNECTs answered with success.")
	mMQTTRefused     = counter("gannet_mqtt_connects_refused_total", "MQTT connections refused before or at CONNECT, by reason.", "reason")
	mMQTTClosed      = counter("gannet_mqtt_disconnects_total", "MQTT connections the broker closed, by reason.", "reason")
	mMQTTACLDenied   = counter("gannet_mqtt_acl_denied_total", "PUBLISHes and topic filters the ACL refused, by action.", "action")
	mMQTTCoreRefused = counter("gannet_mqtt_core_refused_total", "PUBLISHes and topic filters the core refused as invalid or over a limit, by action.", "action")
	mMQTTTooLarge    = counter("gannet_mqtt_outbound_too_large_total", "Deliveries dropped because they exceeded the client's maximum packet size.")
	mMQTTPacketsIn   = counter("gannet_mqtt_packets_received_total", "MQTT control packets received.")
	mMQTTPacketsOut  = counter("gannet_mqtt_packets_sent_total", "MQTT control packets sent.")

	mBridgeUp        = gauge("gannet_bridge_up", "1 while the bridge's connection to its remote broker is up.", "bridge")
	mBridgeDepth     = gauge("gannet_bridge_queue_messages", "Messages in the bridge's durable queue.", "bridge")
	mBridgeBytes     = gauge("gannet_bridge_queue_bytes", "Bytes of the queued messages, as counted against max_bytes.", "bridge")
	mBridgeOldest    = gauge("gannet_bridge_queue_oldest_age_seconds", "Age of the oldest queued message (0 when empty).", "bridge")
	mBridgeInflight  = gauge("gannet_bridge_inflight_messages", "QoS 1/2 messages sent to the remote and not yet acknowledged.", "bridge")
	mBridgeQueued    = counter("gannet_bridge_messages_queued_total", "Local messages written to the bridge's queue.", "bridge")
	mBridgeSent      = counter("gannet_bridge_messages_sent_total", "Messages taken from the queue and sent to the remote.", "bridge")
	mBridgeReceived  = counter("gannet_bridge_messages_received_total", "Remote messages published into the core.", "bridge")
	mBridgeDropped   = counter("gannet_bridge_messages_dropped_total", "Messages the queue's bounds dropped, by reason (qos0, oldest, expired, too_large).", "bridge", "reason")
	mBridgeRefused   = counter("gannet_bridge_remote_refused_total", "QoS 1/2 messages the remote refused with an error reason code (lost).", "bridge")
	mBridgeErrors    = counter("gannet_bridge_errors_total", "Messages that could not be queued (direction out) or that the core refused (direction in).", "bridge", "direction")
	mBridgeCommits   = counter("gannet_bridge_store_commits_total", "Commits of a bridge queue in its own file: log records with their fdatasync, or bbolt transactions (writes over commits is the group-commit batch; 0 for a queue in the core's store, counted in gannet_store_*).", "bridge")
	mBridgeOps       = counter("gannet_bridge_store_writes_total", "Writes committed to a bridge queue in its own file.", "bridge")
	mBridgeWaits     = counter("gannet_bridge_store_write_waits_total", "Writes that waited for the disk (max_pending reached).", "bridge")
	mBridgeRequeued  = counter("gannet_bridge_requeued_total", "In-flight messages requeued because the remote did not keep the session.", "bridge")
	mBridgeQuarantin = counter("gannet_bridge_quarantined_total", "Unreadable records removed from the queue file.", "bridge")
)

var allMetrics = []metricDesc{
	mBuildInfo, mSensors, mRegistrations, mForwarded, mForwarders, mLost, mSnReceived, mSnSent, mSnMalformed,
	mSnRefused, mSnRetransmits, mSnQoSMinus1, mSnMigrated, mSnLimitHits, mRateAllowed, mRateLimited, mRateEvicted,
	mRateSources, mRadioReceived, mRadioSent, mRadioTruncated, mRadioWriteErrors, mRadioSyscalls, mRadioSendCalls, mRadioRcvBuf,
	mRadioSndBuf, mDTLSHandshakes, mDTLSFailures, mDTLSRefused, mDTLSSessions, mDTLSHandshaking, mDTLSClosed,
	mDTLSDropped, mDTLSReloads, mUnverified, mSnMsgsIn, mSnMsgsOut, mSnHeldRepeats, mCoreHeld, mCoreHeldNow,
	mCoreFullest, mCoreCommitErrs, mCoreCommitTime, mStoreBatches, mStoreCalls, mStoreTxTime, mStoreWaits,
	mStoreFailed, mStoreUsed, mStoreSyncs, mStoreLogBytes, mStoreCkpts, mStoreCkptErrs, mStoreCkptTime, mCoreSessions, mCoreQueued, mCoreRetained, mCoreReceived, mCoreSent, mCoreDropped,
	mCoreExpired, mCoreWills, mCoreLimitHits, mCoreDenied, mCoreUptime, mMQTTConns, mMQTTAccepted, mMQTTConnects, mMQTTRefused,
	mMQTTClosed, mMQTTACLDenied, mMQTTCoreRefused, mMQTTTooLarge, mMQTTPacketsIn, mMQTTPacketsOut, mBridgeUp,
	mBridgeDepth, mBridgeBytes, mBridgeOldest, mBridgeInflight, mBridgeQueued, mBridgeSent, mBridgeReceived,
	mBridgeDropped, mBridgeRefused, mBridgeErrors, mBridgeCommits, mBridgeOps, mBridgeWaits, mBridgeRequeued,
	mBridgeQuarantin, mSnV2Connects, mSnV2AuthRefused, mSnV2Paho, mSnV2ProtoErrors, mSnV2Unsupported, mSnV2Rebound, mSnV2Wakeups,
	mTpConnections, mTpConnects, mTpRefused, mTpFailures, mTpPublished, mTpDelivered, mTpRejected, mTpDropped,
}

// collector is the prometheus.Collector of a running gannet.
type collector struct {
	in *instance
}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range allMetrics {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector: one snapshot of every part's
// Stats per scrape.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(m metricDesc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v, labels...)
	}
	in := c.in
	emit(mBuildInfo, 1, in.version)

	if in.gw != nil {
		// Gauges kept as clients change: no pass over the clients, so a
		// scrape costs the same with 100 sensors or 100,000.
		st := in.gw.Stats()
		emit(mSensors, float64(st.Active), "active")
		emit(mSensors, float64(st.Asleep), "asleep")
		emit(mSensors, float64(st.Awake), "awake")
		emit(mUnverified, float64(st.Unverified))
		emit(mRegistrations, float64(st.Registrations))
		emit(mForwarded, float64(st.Forwarded))
		emit(mForwarders, float64(st.Forwarders))
		for i, n := range st.PublishesIn {
			emit(mSnMsgsIn, float64(n), qosLabels[i])
		}
		for i, n := range st.PublishesOut[1:] {
			emit(mSnMsgsOut, float64(n), qosLabels[i+1])
		}
		emit(mSnHeldRepeats, float64(st.HeldRepeats))
		emit(mLost, float64(st.Lost))
		emit(mSnReceived, float64(st.Received))
		emit(mSnSent, float64(st.Sent))
		emit(mSnMalformed, float64(st.Malformed))
		emit(mSnRefused, float64(st.UnknownClient), "unknown_client")
		emit(mSnRefused, float64(st.Unexpected), "unexpected")
		emit(mSnRefused, float64(st.InvalidTopic), "invalid_topic_id")
		emit(mSnRefused, float64(st.Rejected-st.IdentityRefused-st.Denied), "rejected")
		emit(mSnRefused, float64(st.IdentityRefused), "identity")
		emit(mSnRefused, float64(st.Denied), "acl")
		emit(mSnRetransmits, float64(st.Retransmits))
		emit(mSnQoSMinus1, float64(st.QoSMinus1))
		emit(mSnMigrated, float64(st.Migrated))
		for l, hits := range st.LimitHits {
			emit(mSnLimitHits, float64(hits), limitLabel(gateway.Limit(l)))
		}
		emit(mSnV2Connects, float64(st.V2.Connects))
		emit(mSnV2AuthRefused, float64(st.V2.AuthRefused))
		emit(mSnV2Paho, float64(st.V2.PahoDeviations))
		emit(mSnV2ProtoErrors, float64(st.V2.ProtocolErrors))
		emit(mSnV2Unsupported, float64(st.V2.Unsupported))
		emit(mSnV2Rebound, float64(st.V2.Rebound))
		emit(mSnV2Wakeups, float64(st.V2.Wakeups))
	}
	if in.transparent != nil {
		st := in.transparent.Stats()
		emit(mTpConnections, float64(st.Connections))
		emit(mTpConnects, float64(st.Connects))
		emit(mTpRefused, float64(st.RefusedMaxConnections))
		emit(mTpFailures, float64(st.ConnectFailures))
		emit(mTpPublished, float64(st.Published))
		emit(mTpDelivered, float64(st.Delivered))
		emit(mTpRejected, float64(st.Rejected))
		emit(mTpDropped, float64(st.Dropped))
	}
	for _, lim := range in.limiters {
		l := lim.limiter.p.Load()
		if l == nil {
			continue // the table is absent: the limit is off
		}
		ls := l.Stats()
		emit(mRateAllowed, float64(ls.Allowed), lim.name)
		emit(mRateLimited, float64(ls.Limited), lim.name)
		emit(mRateEvicted, float64(ls.Evicted), lim.name)
		emit(mRateSources, float64(ls.Sources), lim.name)
	}
	for _, l := range in.links {
		addr := l.LocalAddr().String()
		switch l := l.(type) {
		case *radio.MulticastLink:
			udpMetrics(emit, addr, "multicast", l.Stats())
		case *radio.UDPLink:
			udpMetrics(emit, addr, "udp", l.Stats())
		case *radio.DTLSLink:
			s := l.Stats()
			emit(mRadioReceived, float64(s.Received), addr, "dtls")
			emit(mRadioSent, float64(s.Sent), addr, "dtls")
			emit(mRadioTruncated, float64(s.Truncated), addr, "dtls")
			emit(mDTLSHandshakes, float64(s.Handshakes), addr)
			emit(mDTLSFailures, float64(s.HandshakeFailures), addr)
			emit(mDTLSRefused, float64(s.HandshakesCapped), addr, "max_handshakes")
			emit(mDTLSRefused, float64(s.RateLimited), addr, "rate_limit")
			emit(mDTLSRefused, float64(s.SessionsRefused), addr, "max_sessions")
			emit(mDTLSSessions, float64(s.Sessions), addr)
			emit(mDTLSHandshaking, float64(s.Handshaking), addr)
			emit(mDTLSClosed, float64(s.Replaced), addr, "replaced")
			emit(mDTLSClosed, float64(s.Reaped), addr, "idle")
			emit(mDTLSDropped, float64(s.Dropped), addr, "read_queue")
			emit(mDTLSDropped, float64(s.NoSession), addr, "no_session")
			emit(mDTLSReloads, float64(s.Reloads), addr, "ok")
			emit(mDTLSReloads, float64(s.ReloadFailures), addr, "failed")
		}
	}
	if in.broker != nil {
		s := in.broker.Stats()
		emit(mCoreSessions, float64(s.Connected), "connected")
		emit(mCoreSessions, float64(s.Sessions-s.Connected), "offline")
		emit(mCoreQueued, float64(s.Queued))
		emit(mCoreRetained, float64(s.Retained))
		emit(mCoreReceived, float64(s.MessagesReceived))
		emit(mCoreSent, float64(s.MessagesSent))
		emit(mCoreDropped, float64(s.Dropped))
		emit(mCoreExpired, float64(s.SessionsExpired))
		emit(mCoreWills, float64(s.WillsPublished))
		emit(mCoreLimitHits, float64(s.LimitHits.Sessions), "max_sessions")
		emit(mCoreLimitHits, float64(s.LimitHits.Queue), "max_queued")
		emit(mCoreLimitHits, float64(s.LimitHits.Inflight), "max_inflight")
		emit(mCoreLimitHits, float64(s.LimitHits.Payload), "max_payload_size")
		emit(mCoreLimitHits, float64(s.LimitHits.Retained), "max_retained")
		emit(mCoreLimitHits, float64(s.LimitHits.Hold), "hold_timeout")
		emit(mCoreHeld, float64(s.Held))
		emit(mCoreHeldNow, float64(s.HeldNow))
		emit(mCoreFullest, s.FullestQueue())
		emit(mCoreCommitErrs, float64(s.CommitErrors))
		ch <- commitHistogram(&s)
		emit(mCoreDenied, float64(s.Denied.Publish), "publish")
		emit(mCoreDenied, float64(s.Denied.Subscribe), "subscribe")
		emit(mCoreDenied, float64(s.Denied.Read), "read")
		emit(mCoreDenied, float64(s.Denied.Will), "will")
		emit(mCoreUptime, s.Uptime.Seconds())
	}
	if in.mqtt != nil {
		s := in.mqtt.Stats()
		emit(mMQTTConns, float64(s.ConnectionsCurrent))
		emit(mMQTTAccepted, float64(s.ConnectionsAccepted))
		emit(mMQTTConnects, float64(s.ConnectionsEstablished))
		emit(mMQTTRefused, float64(s.RefusedMaxConnections), "max_connections")
		emit(mMQTTRefused, float64(s.ConnectTimeouts), "connect_timeout")
		emit(mMQTTRefused, float64(s.RefusedAuth), "auth")
		emit(mMQTTRefused, float64(s.RefusedClientID), "client_id")
		emit(mMQTTRefused, float64(s.UnsupportedVersion), "protocol_version")
		emit(mMQTTRefused, float64(s.RefusedOther), "other")
		emit(mMQTTClosed, float64(s.KeepAliveTimeouts), "keep_alive")
		emit(mMQTTClosed, float64(s.Malformed), "malformed")
		emit(mMQTTClosed, float64(s.ProtocolErrors), "protocol_error")
		emit(mMQTTClosed, float64(s.PacketsTooLarge), "packet_too_large")
		emit(mMQTTClosed, float64(s.TakenOver), "taken_over")
		emit(mMQTTClosed, float64(s.Kicked), "kicked")
		emit(mMQTTACLDenied, float64(s.PublishDenied), "publish")
		emit(mMQTTACLDenied, float64(s.SubscribeDenied), "subscribe")
		emit(mMQTTCoreRefused, float64(s.PublishRefused), "publish")
		emit(mMQTTCoreRefused, float64(s.SubscribeRefused), "subscribe")
		emit(mMQTTTooLarge, float64(s.OutboundTooLarge))
		emit(mMQTTPacketsIn, float64(s.PacketsReceived))
		emit(mMQTTPacketsOut, float64(s.PacketsSent))
	}
	if in.store != nil {
		s := in.store.Stats()
		emit(mStoreBatches, float64(s.Batches))
		emit(mStoreCalls, float64(s.Calls))
		emit(mStoreTxTime, s.BatchTime.Seconds())
		emit(mStoreWaits, float64(s.QueueWaits))
		emit(mStoreFailed, float64(s.Failed))
		emit(mStoreUsed, float64(s.UsedBytes))
		emit(mStoreSyncs, float64(s.LogSyncs))
		emit(mStoreLogBytes, float64(s.LogBytes))
		emit(mStoreCkpts, float64(s.Checkpoints))
		emit(mStoreCkptErrs, float64(s.CheckpointErrors))
		emit(mStoreCkptTime, s.CheckpointTime.Seconds())
	}
	for _, b := range in.bridges.bridges() {
		s, name := b.Stats(), b.Name()
		up := 0.0
		if s.Connected {
			up = 1
		}
		emit(mBridgeUp, up, name)
		emit(mBridgeDepth, float64(s.Depth), name)
		emit(mBridgeBytes, float64(s.Bytes), name)
		emit(mBridgeOldest, s.OldestAge.Seconds(), name)
		emit(mBridgeInflight, float64(s.Inflight), name)
		emit(mBridgeQueued, float64(s.Enqueued), name)
		emit(mBridgeSent, float64(s.Sent), name)
		emit(mBridgeReceived, float64(s.Received), name)
		emit(mBridgeDropped, float64(s.DroppedQoS0), name, "qos0")
		emit(mBridgeDropped, float64(s.DroppedOldest), name, "oldest")
		emit(mBridgeDropped, float64(s.Expired), name, "expired")
		emit(mBridgeDropped, float64(s.TooLarge), name, "too_large")
		emit(mBridgeRefused, float64(s.RemoteRefused), name)
		emit(mBridgeErrors, float64(s.QueueErrors), name, "out")
		emit(mBridgeErrors, float64(s.InboundErrors), name, "in")
		emit(mBridgeCommits, float64(s.Commits), name)
		emit(mBridgeOps, float64(s.CommittedOps), name)
		emit(mBridgeWaits, float64(s.WriteWaits), name)
		emit(mBridgeRequeued, float64(s.Requeued), name)
		emit(mBridgeQuarantin, float64(s.Quarantined), name)
	}
}

// qosLabels are the qos label values of Stats.PublishesIn/Out's indexes.
var qosLabels = [...]string{"-1", "0", "1", "2"}

// commitHistogram is the core's commit latency as a Prometheus histogram:
// CommitLatency holds per-bucket counts, a histogram cumulative ones.
func commitHistogram(s *mqttcore.Stats) prometheus.Metric {
	bounds := mqttcore.CommitBuckets()
	buckets := make(map[float64]uint64, len(bounds))
	var n uint64
	for i, le := range bounds {
		n += s.CommitLatency[i]
		buckets[le.Seconds()] = n
	}
	n += s.CommitLatency[len(bounds)]
	return prometheus.MustNewConstHistogram(mCoreCommitTime.desc, n, s.CommitTime.Seconds(), buckets)
}

// limitLabel is a gateway limit's configuration key as a label value:
// "max_message_size (received)" becomes "max_message_size_received".
func limitLabel(l gateway.Limit) string {
	return strings.NewReplacer(" (", "_", ")", "").Replace(l.String())
}

func udpMetrics(emit func(metricDesc, float64, ...string), addr, network string, s radio.UDPStats) {
	emit(mRadioReceived, float64(s.Received), addr, network)
	emit(mRadioSent, float64(s.Sent), addr, network)
	emit(mRadioTruncated, float64(s.Truncated), addr, network)
	emit(mRadioWriteErrors, float64(s.WriteErrors), addr, network)
	emit(mRadioSyscalls, float64(s.Syscalls), addr, network)
	emit(mRadioSendCalls, float64(s.SendSyscalls), addr, network)
	emit(mRadioRcvBuf, float64(s.ReadBuffer), addr, network)
	emit(mRadioSndBuf, float64(s.WriteBuffer), addr, network)
}

// newRegistry returns the registry /metrics serves: gannet's collector and
// the Go runtime and process collectors.
func newRegistry(in *instance) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{in: in},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

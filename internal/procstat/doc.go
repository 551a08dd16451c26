// Package procstat reads what Linux's /proc says of a process: its CPU
// time, its resident memory, and the machine's load average. The load
// generator and the benchmarks use it to report what a measured process
// (the gateway, Mosquitto) cost.
package procstat

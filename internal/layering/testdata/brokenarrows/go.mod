// A module that breaks DEVELOPERS.md's import arrows on purpose, once per
// kind of rule: TestImportArrowsCatchBreaks checks that each break is found.
module example.com/brokenarrows

go 1.26.0

require example.com/elsewhere v0.0.0

replace example.com/elsewhere => ./elsewhere

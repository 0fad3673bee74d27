// Package scenario is hopcheck's scenario model: it parses YAML scenario
// files written to the scenario format (docs/scenario-format.md), validates
// them, and returns plain data that the planner and builder consume.
//
// Nothing here touches the kernel. Every error a user can cause is an
// *Error carrying the file, line, column and field, so that bad input is
// reported as "file:line:col: field: what is wrong" and creates nothing.
package scenario

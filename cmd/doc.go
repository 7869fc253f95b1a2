// Package cmd is the registry's command line: one cobra command per
// constructor (serve, config check, version), and File, the nora.toml
// struct that composes each package's own Config section.
//
// Configuration is strict: unknown keys are errors, ${NAME} in any string
// value expands from the environment (an unset variable is an error), and
// every error names its key so one line tells the operator what to fix.
// The command library never exits or prints errors itself; main does both.
package cmd

package cmd

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// consoleWriter writes human-readable log lines to w, coloured only when
// w is a terminal and NO_COLOR is unset or empty (https://no-color.org),
// so a file or a pipe never receives escape codes.
func consoleWriter(w io.Writer) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w) || os.Getenv("NO_COLOR") != ""}
}

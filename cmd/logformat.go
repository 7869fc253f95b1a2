package cmd

import (
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// consoleWriter writes human-readable log lines to w, coloured only when
// w is a terminal and NO_COLOR is unset or empty (https://no-color.org),
// so a file or a pipe never receives escape codes.
func consoleWriter(w io.Writer) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w) || os.Getenv("NO_COLOR") != ""}
}

// stampHook adds the "time" field as zerolog's Timestamp does, but
// formats the time once a second rather than once a line: formatting was
// a fiftieth of the server's time on manifest pulls, where every request
// logs a line. zerolog's default format is RFC 3339 to the second, so
// the text of one second serves every line written in it.
type stampHook struct {
	last atomic.Pointer[stamp]
}

type stamp struct {
	sec  int64
	text string
}

func (h *stampHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	if zerolog.TimeFieldFormat != time.RFC3339 {
		e.Timestamp() // a finer format has a new text every line
		return
	}
	now := zerolog.TimestampFunc()
	s := h.last.Load()
	if s == nil || s.sec != now.Unix() {
		s = &stamp{now.Unix(), now.Format(zerolog.TimeFieldFormat)}
		h.last.Store(s)
	}
	e.Str(zerolog.TimestampFieldName, s.text)
}

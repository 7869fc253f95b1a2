package cmd

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestLogTime: the server's lines carry "time" as zerolog's Timestamp
// writes it, in the same place, whatever second they are written in.
func TestLogTime(t *testing.T) {
	var ours, theirs bytes.Buffer
	log := newLogger(LogConfig{Level: "info", Format: "json"}, &ours)
	ref := zerolog.New(&theirs).With().Timestamp().Logger()
	stamp := regexp.MustCompile(`"time":"[^"]*"`)
	for i := range 2 {
		if i > 0 {
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		}
		ours.Reset()
		theirs.Reset()
		before := time.Now().Truncate(time.Second)
		log.Info().Str("k", "v").Msg("hello")
		ref.Info().Str("k", "v").Msg("hello")
		after := time.Now()
		var line struct{ Time string }
		if err := json.Unmarshal(ours.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", ours.String(), err)
		}
		got, err := time.Parse(time.RFC3339, line.Time)
		if err != nil || got.Before(before) || got.After(after) {
			t.Errorf("time %q of a line written between %s and %s: %v", line.Time, before, after, err)
		}
		if a, b := stamp.ReplaceAllString(ours.String(), "T"), stamp.ReplaceAllString(theirs.String(), "T"); a != b {
			t.Errorf("log line = %s, want the shape of zerolog's %s", a, b)
		}
	}
}

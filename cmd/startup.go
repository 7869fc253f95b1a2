package cmd

import (
	"runtime"

	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
)

// logStartup writes the "listening" line, which says what this server is:
// its version, address, whether TLS and authentication are on, where
// blobs live and when GC runs. It names the S3 endpoint and bucket, never
// the credentials. svc is nil when authentication is off.
func logStartup(log zerolog.Logger, f File, addr string, tls bool, svc *auth.Service) {
	ev := log.Info().Str("version", buildVersion()).Str("commit", commit).Str("go", runtime.Version()).
		Str("addr", addr).Bool("tls", tls).Bool("auth", svc != nil)
	if svc != nil {
		s := svc.Summary()
		ev = ev.Int("users", s.Users).Int("rules", s.Rules).Int("oidc_issuers", s.OIDCIssuers).Strs("anonymous", s.Anonymous)
	}
	ev = ev.Str("storage", f.Storage.Driver).Str("root", f.Storage.Root)
	if f.Storage.Driver == "s3" {
		s3 := f.Storage.S3
		ev = ev.Str("s3_endpoint", s3.Endpoint).Bool("s3_secure", s3.Secure).Str("s3_bucket", s3.Bucket).Str("s3_prefix", s3.Prefix)
	}
	ev.Str("gc", gcSchedule(f)).Msg("listening")
}

// gcSchedule says when the server runs retention and GC: "off", or
// "every 6h" with the interval as written in the file.
func gcSchedule(f File) string {
	if f.GC.IntervalDuration() <= 0 {
		return "off"
	}
	if f.Retention != nil && len(f.Retention.Rules) > 0 {
		return "retention then gc every " + f.GC.Interval
	}
	return "every " + f.GC.Interval
}

package cmd

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fixture(name string) string { return filepath.Join("..", "testdata", "config", name) }

func TestLoadFile(t *testing.T) {
	tests := []struct {
		file    string
		env     map[string]string
		wantErr string     // substring of the error; empty means success
		several bool       // the error has more than one line
		check   func(File) // called on success
	}{
		{file: "empty.toml", check: func(f File) {
			if !reflect.DeepEqual(f, DefaultFile()) {
				t.Errorf("LoadFile(empty.toml) = %+v, want defaults %+v", f, DefaultFile())
			}
		}},
		{file: "partial.toml", check: func(f File) {
			want := DefaultFile()
			want.Server.Listen = ":8080"
			want.Log.Format = "console"
			if !reflect.DeepEqual(f, want) {
				t.Errorf("LoadFile(partial.toml) = %+v, want %+v", f, want)
			}
		}},
		{file: "full.toml", check: func(f File) {
			if f.Server.Listen != "127.0.0.1:5443" || f.Server.TLSKey != "../testdata/config/tls/key.pem" ||
				f.Server.ShutdownTimeout.Std() != 90*time.Second || f.Server.ReadHeaderTimeout.Std() != 5*time.Second ||
				f.Server.IdleTimeout.Std() != time.Minute || f.Storage.Root != "/var/lib/nora" ||
				f.Log.Level != "debug" || f.Log.Format != "json" || f.Metrics.Enabled || f.Metrics.Path != "/internal/metrics" {
				t.Errorf("LoadFile(full.toml) = %+v", f)
			}
		}},
		{
			file: "env.toml",
			env:  map[string]string{"NORA_TEST_HOST": "127.0.0.1", "NORA_TEST_PORT": "6000", "NORA_TEST_GRACE": "5s", "NORA_TEST_ROOT": "/srv"},
			check: func(f File) {
				if f.Server.Listen != "127.0.0.1:6000" || f.Server.ShutdownTimeout.Std() != 5*time.Second || f.Storage.Root != "/srv/data" {
					t.Errorf("LoadFile(env.toml) = %+v, want variables expanded", f)
				}
			},
		},
		{file: "dollar.toml", check: func(f File) {
			if f.Storage.Root != "/srv/$nora/data" {
				t.Errorf("storage.root = %q, want the lone $ kept", f.Storage.Root)
			}
		}},
		{file: "env.toml", env: map[string]string{"NORA_TEST_HOST": "h", "NORA_TEST_PORT": "1", "NORA_TEST_ROOT": "/srv", "NORA_TEST_GRACE": "soon"},
			wantErr: `server.shutdown_timeout: invalid duration "soon"`},
		{file: "missing_env.toml", wantErr: "storage.root: environment variable NORA_TEST_UNSET_VARIABLE is not set"},
		{file: "unknown_key.toml", wantErr: `server.shutdown_timout: unknown key, did you mean "shutdown_timeout"?`},
		{file: "unknown_section.toml", wantErr: `srever: unknown key, did you mean "server"?`},
		{file: "bad_duration.toml", wantErr: `server.shutdown_timeout: invalid duration "30 seconds"`},
		{file: "bad_type.toml", wantErr: `server.listen: want a string like ":5000", got the number 5000`},
		{file: "bad_syntax.toml", wantErr: "line 2, column 8: expected"},
		{file: "half_tls.toml", wantErr: "server.tls_cert, server.tls_key: set both or neither"},
		{file: "bad_level.toml", wantErr: `log.level: unknown level "verbose"`},
		{file: "bad_storage.toml", wantErr: `storage.driver: unknown driver "floppy"`},
		{file: "bad_metrics_path.toml", wantErr: `metrics.path: "/v2/metrics" is a registry route`},
		{file: "no_such_file.toml", wantErr: "cannot read: no such file"},
		{file: "s3.toml", env: map[string]string{"NORA_TEST_S3_ACCESS": "AKIA-test", "NORA_TEST_S3_SECRET": "s3cr3t"}, check: func(f File) {
			s := f.Storage.S3
			if f.Storage.Driver != "s3" || s.Endpoint != "minio.lan:9000" || s.Bucket != "registry" || s.Prefix != "edge-1" ||
				s.AccessKey != "AKIA-test" || s.SecretKey != "s3cr3t" || !s.Secure || !s.PathStyle || !s.Redirect ||
				s.RedirectExpiry != "5m" || s.PartSizeMiB != 32 || s.MaxRetries != 3 || s.Timeout != "30s" {
				t.Errorf("LoadFile(s3.toml) = %+v, want the file's values over the defaults, secrets expanded", s)
			}
		}},
		{file: "s3.toml", several: true, wantErr: "storage.s3.access_key: environment variable NORA_TEST_S3_ACCESS is not set\n../testdata/config/s3.toml: storage.s3.secret_key: environment variable NORA_TEST_S3_SECRET is not set"},
		{file: "s3_no_bucket.toml", wantErr: "storage.s3.bucket: must be set"},
		{file: "s3_scheme.toml", wantErr: `storage.s3.endpoint: "https://minio.lan:9000": want host[:port] without a scheme`},
		{file: "ui_off.toml", check: func(f File) {
			if f.UI.Enabled || f.UI.SessionLifetime != "1h" {
				t.Errorf("LoadFile(ui_off.toml) = %+v, want the dashboard off, 1h sessions", f.UI)
			}
		}},
		{file: "ui_bad_lifetime.toml", wantErr: `ui.session_lifetime: invalid duration "forever"`},
		{file: "ui_unknown_key.toml", wantErr: `ui.enable: unknown key, did you mean "enabled"?`},
		{file: "ui_metrics_path.toml", wantErr: `metrics.path: "/ui/metrics" is a dashboard route`},
		{file: "s3_small_part.toml", wantErr: "storage.s3.part_size_mib: 1: must be between 5 and 5120"},
		{file: "s3_unknown_key.toml", wantErr: `storage.s3.buckett: unknown key, did you mean "bucket"?`},
		{file: "mirror.toml", env: map[string]string{"NORA_TEST_HUB_TOKEN": "dckr_pat_x"}, check: func(f File) {
			u := f.Mirror.Upstreams
			if len(u) != 2 || u[0].Password != "dckr_pat_x" || !u[0].Default || u[0].RevalidateInterval() != 10*time.Minute ||
				len(u[0].Hosts) != 3 || !u[1].Insecure || !u[1].AllowPush || u[1].RevalidateInterval() != 5*time.Minute {
				t.Errorf("LoadFile(mirror.toml) = %+v, want the file's upstreams, password expanded", u)
			}
		}},
		{file: "mirror.toml", wantErr: "mirror.upstreams[0].password: environment variable NORA_TEST_HUB_TOKEN is not set"},
		{file: "mirror_http.toml", wantErr: `mirror.upstreams[1].url: "http://10.0.0.2:5000" is plain http`},
		{file: "mirror_unknown_key.toml", wantErr: `mirror.upstreams[0].revalidat: unknown key, did you mean "revalidate"?`},
		{file: "replicate.toml", env: map[string]string{"NORA_TEST_REPL_TOKEN": "robot-secret"}, check: func(f File) {
			p, l := f.Replicate.Push, f.Replicate.Pull
			if len(p) != 1 || p[0].Password != "robot-secret" || p[0].ReplicatesDeletes() || p[0].Concurrency != 2 ||
				p[0].ToPrefix != "edge-1" || len(p[0].Tags) != 2 || p[0].MaxRate != "2MiB/s" ||
				len(l) != 1 || l[0].PollInterval() != 30*time.Second || l[0].Newest != 3 || !l[0].Insecure {
				t.Errorf("LoadFile(replicate.toml) = %+v, want the file's remotes, password expanded", f.Replicate)
			}
		}},
		{file: "replicate.toml", wantErr: "replicate.push[0].password: environment variable NORA_TEST_REPL_TOKEN is not set"},
		{file: "replicate_unknown_key.toml", wantErr: `replicate.push[0].delete: unknown key, did you mean "deletes"?`},
		{file: "replicate_bad_window.toml", wantErr: `replicate.pull[0].window: "1am-5am" is not a window`},
		{file: "replicate_same_name.toml", wantErr: `replicate.pull[0].name: "central" is also the name of replicate.push[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := fixture(tt.file)
			f, err := LoadFile(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadFile(%s) = %v, want success", tt.file, err)
				}
				tt.check(f)
				return
			}
			if err == nil {
				t.Fatalf("LoadFile(%s) = nil error, want %q", tt.file, tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) || !strings.HasPrefix(msg, path+": ") || strings.Contains(msg, "\n") != tt.several {
				t.Errorf("LoadFile(%s) = %q, want lines starting %q containing %q (several: %v)", tt.file, msg, path+": ", tt.wantErr, tt.several)
			}
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, path+": ") {
					t.Errorf("LoadFile(%s): line %q does not start with the path", tt.file, line)
				}
			}
		})
	}
}

func TestDefaultFileValid(t *testing.T) {
	if err := DefaultFile().Validate(); err != nil {
		t.Errorf("DefaultFile().Validate() = %v", err)
	}
}

func TestServerLimitsValidate(t *testing.T) {
	for _, tt := range []struct {
		edit    func(*ServerConfig)
		wantErr string
	}{
		{func(s *ServerConfig) { s.BodyIdleTimeout = "0s" }, `server.body_idle_timeout: must be positive, got "0s"`},
		{func(s *ServerConfig) { s.BodyIdleTimeout = "soon" }, `server.body_idle_timeout: invalid duration "soon"`},
		{func(s *ServerConfig) { s.MaxConnections = 0 }, "server.max_connections: must be at least 1, got 0"},
		{func(s *ServerConfig) { s.MaxConnectionsPerClient = -1 }, "server.max_connections_per_client: must be at least 1, got -1"},
		{func(s *ServerConfig) { s.MaxConnections = 10 }, "server.max_connections_per_client: 512 is more than server.max_connections (10)"},
	} {
		f := DefaultFile()
		tt.edit(&f.Server)
		if err := f.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
		}
	}
}

func TestExpand(t *testing.T) {
	t.Setenv("NORA_A", "a")
	t.Setenv("NORA_EMPTY", "")
	tests := []struct{ in, want, wantErr string }{
		{in: "plain", want: "plain"},
		{in: "${NORA_A}", want: "a"},
		{in: "x${NORA_A}y${NORA_A}z", want: "xayaz"},
		{in: "${NORA_EMPTY}", want: ""},
		{in: "$NORA_A and $", want: "$NORA_A and $"},
		{in: "${NORA_A", wantErr: "unterminated"},
		{in: "${1X}", wantErr: "invalid variable name"},
		{in: "${}", wantErr: "invalid variable name"},
		{in: "${NORA_NOT_SET_ANYWHERE}", wantErr: "NORA_NOT_SET_ANYWHERE is not set"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("expand(%q) = %q, %v, want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

// run executes the root command with args and returns its stdout and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestConfigCheck(t *testing.T) {
	out, err := run(t, "config", "check", fixture("full.toml"))
	if err != nil || out != fixture("full.toml")+": ok\n" {
		t.Errorf("config check full.toml = %q, %v, want %q", out, err, fixture("full.toml")+": ok\n")
	}
	out, err = run(t, "config", "check", fixture("unknown_key.toml"))
	if err == nil || !strings.Contains(err.Error(), `server.shutdown_timout: unknown key, did you mean "shutdown_timeout"?`) || out != "" {
		t.Errorf("config check unknown_key.toml = %q, %v, want the unknown key named", out, err)
	}
	if _, err := run(t, "config", "check"); err == nil {
		t.Error("config check without FILE succeeded")
	}
}

func TestExampleConfig(t *testing.T) {
	f, err := LoadFile(filepath.Join("..", "nora.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, DefaultFile()) {
		t.Errorf("nora.toml.example = %+v, want exactly the defaults %+v", f, DefaultFile())
	}
}

func TestCLIErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--no-such-flag"},
		{"serve", "extra"},
		{"no-such-command"},
		{"serve", "--config", fixture("bad_level.toml")},
		{"gc", "--pace", "2"},
		{"gc", "--pace", "-0.5"},
		{"migrate", "--from", fixture("empty.toml")},
	} {
		out, err := run(t, args...)
		if err == nil || strings.Contains(err.Error(), "\n") || out != "" {
			t.Errorf("registry %v = %q, %v, want one-line error and no output", args, out, err)
		}
	}

	t.Setenv("NORA_CONFIG", fixture("bad_level.toml"))
	if _, err := run(t, "serve"); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("NORA_CONFIG=bad_level.toml registry serve = %v, want the file's error", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil || !strings.Contains(out, "version: dev") || !strings.Contains(out, "go:      go1.") {
		t.Errorf("registry version = %q, %v", out, err)
	}
}

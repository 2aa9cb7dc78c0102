package server

import (
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// TestOptions gives every option a zero, a negative (where its type has
// them) and an ordinary value. Each either sets its one setting and leaves
// every other at its default, or fails naming itself and changes nothing.
func TestOptions(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	tests := []struct {
		desc    string
		opt     Option
		want    func(*options) // applied to the defaults; nil: opt must fail
		wantErr string
	}{
		{"logger", WithLogger(logger), func(o *options) { o.logger = logger }, ""},
		{"logger nil is the default", WithLogger(nil), func(*options) {}, ""},
		{"metrics nil is the default", WithMetrics(nil), func(*options) {}, ""},
		{"reflection off", WithReflection(false), func(o *options) { o.reflection = false }, ""},
		{"TLS nil is plaintext", WithTLS(nil), func(*options) {}, ""},

		{"max recv 1 KiB", WithMaxRecvMsgSize(1 << 10), func(o *options) { o.maxRecvMsgSize = 1 << 10 }, ""},
		{"max recv 0", WithMaxRecvMsgSize(0), nil, "WithMaxRecvMsgSize(0): must be positive"},
		{"max recv -1", WithMaxRecvMsgSize(-1), nil, "WithMaxRecvMsgSize(-1): must be positive"},
		{"max send 1 KiB", WithMaxSendMsgSize(1 << 10), func(o *options) { o.maxSendMsgSize = 1 << 10 }, ""},
		{"max send 0", WithMaxSendMsgSize(0), nil, "WithMaxSendMsgSize(0): must be positive"},
		{"max send -1", WithMaxSendMsgSize(-1), nil, "WithMaxSendMsgSize(-1): must be positive"},
		{"max streams 10", WithMaxConcurrentStreams(10), func(o *options) { o.maxStreams = 10 }, ""},
		{"max streams 0", WithMaxConcurrentStreams(0), nil, "WithMaxConcurrentStreams(0): must be positive"},
		{"connection timeout 1s", WithConnectionTimeout(time.Second), func(o *options) { o.connTimeout = time.Second }, ""},
		{"connection timeout 0", WithConnectionTimeout(0), nil, "WithConnectionTimeout(0s): must be positive"},
		{"connection timeout -1s", WithConnectionTimeout(-time.Second), nil, "WithConnectionTimeout(-1s): must be positive"},
		{"stream workers 8", WithStreamWorkers(8), func(o *options) { o.streamWorkers = 8 }, ""},
		{"stream workers 0: a goroutine per RPC", WithStreamWorkers(0), func(o *options) { o.streamWorkers = 0 }, ""},

		{"keepalive time 30s", WithKeepaliveTime(30 * time.Second), func(o *options) { o.keepalive.Time = 30 * time.Second }, ""},
		{"keepalive time 0: gRPC's default", WithKeepaliveTime(0), func(o *options) { o.keepalive.Time = 0 }, ""},
		{"keepalive time -1s", WithKeepaliveTime(-time.Second), nil, "WithKeepaliveTime(-1s): must not be negative"},
		{"keepalive timeout 5s", WithKeepaliveTimeout(5 * time.Second), func(o *options) { o.keepalive.Timeout = 5 * time.Second }, ""},
		{"keepalive timeout 0: gRPC's default", WithKeepaliveTimeout(0), func(o *options) { o.keepalive.Timeout = 0 }, ""},
		{"keepalive timeout -1s", WithKeepaliveTimeout(-time.Second), nil, "WithKeepaliveTimeout(-1s): must not be negative"},
		{"max idle 1m", WithMaxConnectionIdle(time.Minute), func(o *options) { o.keepalive.MaxConnectionIdle = time.Minute }, ""},
		{"max idle 0: never", WithMaxConnectionIdle(0), func(*options) {}, ""},
		{"max idle -1s", WithMaxConnectionIdle(-time.Second), nil, "WithMaxConnectionIdle(-1s): must not be negative"},
		{"max age 1h", WithMaxConnectionAge(time.Hour), func(o *options) { o.keepalive.MaxConnectionAge = time.Hour }, ""},
		{"max age 0: never", WithMaxConnectionAge(0), func(o *options) { o.keepalive.MaxConnectionAge = 0 }, ""},
		{"max age -1s", WithMaxConnectionAge(-time.Second), nil, "WithMaxConnectionAge(-1s): must not be negative"},
		{"max age grace 1m", WithMaxConnectionAgeGrace(time.Minute), func(o *options) { o.keepalive.MaxConnectionAgeGrace = time.Minute }, ""},
		{"max age grace 0: unbounded", WithMaxConnectionAgeGrace(0), func(o *options) { o.keepalive.MaxConnectionAgeGrace = 0 }, ""},
		{"max age grace -1s", WithMaxConnectionAgeGrace(-time.Second), nil, "WithMaxConnectionAgeGrace(-1s): must not be negative"},
		{"keepalive min time 1s", WithKeepaliveMinTime(time.Second), func(o *options) { o.enforcement.MinTime = time.Second }, ""},
		{"keepalive min time 0: gRPC's default", WithKeepaliveMinTime(0), func(o *options) { o.enforcement.MinTime = 0 }, ""},
		{"keepalive min time -1s", WithKeepaliveMinTime(-time.Second), nil, "WithKeepaliveMinTime(-1s): must not be negative"},
		{"pings need a stream", WithKeepalivePermitWithoutStream(false), func(o *options) { o.enforcement.PermitWithoutStream = false }, ""},

		{"drain timeout 5s", WithDrainTimeout(5 * time.Second), func(o *options) { o.drainTimeout = 5 * time.Second }, ""},
		{"drain timeout 0: cut off at once", WithDrainTimeout(0), func(o *options) { o.drainTimeout = 0 }, ""},
		{"drain timeout -1s", WithDrainTimeout(-time.Second), nil, "WithDrainTimeout(-1s): must not be negative"},
		{"drain delay 5s", WithDrainDelay(5 * time.Second), func(o *options) { o.drainDelay = 5 * time.Second }, ""},
		{"drain delay 0: none", WithDrainDelay(0), func(*options) {}, ""},
		{"drain delay -1s", WithDrainDelay(-time.Second), nil, "WithDrainDelay(-1s): must not be negative"},

		{"version", WithVersion("v1.2.3"), func(o *options) { o.version = "v1.2.3" }, ""},
		{"version empty is unknown", WithVersion(""), func(*options) {}, ""},

		{"rate limit 2.5/s", WithRateLimit(2.5), func(o *options) { o.rateLimit = 2.5 }, ""},
		{"rate limit 0: off", WithRateLimit(0), func(*options) {}, ""},
		{"rate limit -1", WithRateLimit(-1), nil, "WithRateLimit(-1): want a finite number"},
		{"rate limit NaN", WithRateLimit(math.NaN()), nil, "WithRateLimit(NaN)"},
		{"rate limit +Inf", WithRateLimit(math.Inf(1)), nil, "WithRateLimit(+Inf)"},
		{"rate burst 3", WithRateLimitBurst(3), func(o *options) { o.rateBurst = 3 }, ""},
		{"rate burst 0: the rate rounded up", WithRateLimitBurst(0), func(*options) {}, ""},
		{"rate burst -1", WithRateLimitBurst(-1), nil, "WithRateLimitBurst(-1): must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, want := defaultOptions(), defaultOptions()
			err := tt.opt(&got)
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				tt.want(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("options\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestNewReportsEveryBadOption: New fails naming each option it cannot
// honour, and settings that only work together are checked whatever their
// order.
func TestNewReportsEveryBadOption(t *testing.T) {
	tests := []struct {
		desc    string
		opts    []Option
		wantErr []string // empty: New succeeds
	}{
		{"two bad options", []Option{WithMaxRecvMsgSize(0), WithReflection(false), WithConnectionTimeout(0)},
			[]string{"WithMaxRecvMsgSize(0)", "WithConnectionTimeout(0s)"}},
		{"burst without a rate", []Option{WithRateLimitBurst(3)}, []string{"WithRateLimitBurst(3) needs WithRateLimit"}},
		{"burst without a rate, rate 0", []Option{WithRateLimitBurst(3), WithRateLimit(0)}, []string{"WithRateLimitBurst(3) needs WithRateLimit"}},
		{"burst before the rate", []Option{WithRateLimitBurst(3), WithRateLimit(1)}, nil},
		{"burst after the rate", []Option{WithRateLimit(1), WithRateLimitBurst(3)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			srv, err := New(append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, tt.opts...)...)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(srv.grpc.Stop)
				return
			}
			if err == nil {
				srv.grpc.Stop()
				t.Fatalf("New succeeded, want an error naming %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

// TestOneOptionKeepsTheOtherDefaults serves with one transport setting
// changed at a time: the others keep their defaults, so a greeting still
// goes through (a zeroed receive limit or handshake timeout would fail it).
func TestOneOptionKeepsTheOtherDefaults(t *testing.T) {
	for _, tt := range []struct {
		desc string
		opt  Option
	}{
		{"max recv", WithMaxRecvMsgSize(1 << 10)},
		{"max send", WithMaxSendMsgSize(1 << 10)},
		{"max streams", WithMaxConcurrentStreams(10)},
		{"connection timeout", WithConnectionTimeout(time.Second)},
		{"stream workers", WithStreamWorkers(0)},
		{"keepalive time", WithKeepaliveTime(30 * time.Second)},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			h := start(t, withOptions(tt.opt))
			resp, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"})
			if err != nil || resp.GetMessage() != "Hello, Ada!" {
				t.Fatalf("SayHello: %q, %v", resp.GetMessage(), err)
			}
		})
	}
}

// TestConnWindow: a connection's window holds every stream it may carry at
// its full window, and never more than HTTP/2's largest window.
func TestConnWindow(t *testing.T) {
	for _, tt := range []struct {
		streams uint32
		want    int32
	}{
		{1, streamWindow},
		{100, 100 * streamWindow},
		{math.MaxUint32, math.MaxInt32},
	} {
		if got := connWindow(tt.streams); got != tt.want {
			t.Errorf("connWindow(%d) = %d, want %d", tt.streams, got, tt.want)
		}
	}
}

package web

import (
	"encoding/base64"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, contentType, query string
		want                       request
	}{
		{"POST", "application/json", "", request{protocolConnect, codecJSON, true}},
		{"POST", "application/json; charset=utf-8", "", request{protocolConnect, codecJSON, true}},
		{"POST", "application/proto", "", request{protocolConnect, codecProto, true}},
		{"POST", "application/connect+json", "", request{protocolConnect, codecJSON, false}},
		{"POST", "application/connect+proto", "", request{protocolConnect, codecProto, false}},
		{"POST", "application/connect", "", request{protocolUnknown, codecUnknown, false}},
		{"POST", "application/grpc-web", "", request{protocolGRPCWeb, codecProto, false}},
		{"POST", "application/grpc-web+json", "", request{protocolGRPCWeb, codecJSON, false}},
		{"POST", "application/grpc-web-text", "", request{protocolGRPCWebText, codecProto, false}},
		{"POST", "application/grpc-web-text+proto", "", request{protocolGRPCWebText, codecProto, false}},
		{"POST", "application/grpc", "", request{protocolGRPC, codecProto, false}},
		{"POST", "Application/GRPC+proto", "", request{protocolGRPC, codecProto, false}},
		{"POST", "application/grpcx", "", request{protocolUnknown, codecUnknown, false}},
		{"POST", "application/connect+xml", "", request{protocolConnect, codecUnknown, false}},
		{"POST", "text/plain", "", request{protocolUnknown, codecUnknown, false}},
		{"POST", "", "", request{protocolUnknown, codecUnknown, false}},
		{"GET", "", "connect=v1&encoding=json", request{protocolConnectGet, codecJSON, false}},
		{"GET", "", "connect=v1&encoding=proto", request{protocolConnectGet, codecProto, false}},
		{"GET", "", "", request{protocolConnectGet, codecUnknown, false}},
		{"OPTIONS", "", "", request{protocolPreflight, codecUnknown, false}},
		{"PUT", "application/json", "", request{protocolUnknown, codecUnknown, false}},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "/acme.greeter.v1.GreeterService/SayHello?"+tt.query, nil)
		if tt.contentType != "" {
			r.Header.Set("Content-Type", tt.contentType)
		}
		if got := classify(r); got != tt.want {
			t.Errorf("%s %q ?%s: %+v, want %+v", tt.method, tt.contentType, tt.query, got, tt.want)
		}
	}
}

func TestGRPCWebText(t *testing.T) {
	frame := []byte{0, 0, 0, 0, 5, 0x0a, 3, 'A', 'd', 'a'}
	for _, tc := range []struct {
		desc, body string
		ok         bool
	}{
		{"one chunk", base64.StdEncoding.EncodeToString(frame), true},
		{"padded chunks", base64.StdEncoding.EncodeToString(frame[:4]) + base64.StdEncoding.EncodeToString(frame[4:]), true},
		{"with line breaks", base64.StdEncoding.EncodeToString(frame[:6]) + "\r\n" + base64.StdEncoding.EncodeToString(frame[6:]), true},
		{"not base64", "not base64!", false},
		{"cut short", base64.StdEncoding.EncodeToString(frame)[:5], false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/grpc-web-text+proto")
			got, err := decodeGRPCWebText(r)
			if !tc.ok {
				if err == nil {
					t.Fatal("decoded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(got.Body)
			if string(body) != string(frame) || got.Header.Get("Content-Type") != "application/grpc-web+proto" || got.ContentLength != int64(len(frame)) {
				t.Errorf("%q %q %d", body, got.Header.Get("Content-Type"), got.ContentLength)
			}
		})
	}

	// The response: each flush a padded chunk of its own.
	rec := httptest.NewRecorder()
	w := newTextWriter(rec)
	w.Header().Set("Content-Type", "application/grpc-web+proto")
	w.Header().Set("Content-Length", "10")
	w.Write(frame[:4])
	w.Flush()
	w.Write(frame[4:])
	w.close()
	want := base64.StdEncoding.EncodeToString(frame[:4]) + base64.StdEncoding.EncodeToString(frame[4:])
	if got := rec.Body.String(); got != want || rec.Header().Get("Content-Type") != "application/grpc-web-text+proto" || rec.Header().Get("Content-Length") != "" {
		t.Errorf("response %q %v, want %q", got, rec.Header(), want)
	}
}

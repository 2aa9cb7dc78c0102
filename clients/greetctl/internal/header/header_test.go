package header_test

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/acme/greeter/clients/greetctl/internal/header"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    metadata.MD
		wantErr string
	}{
		{name: "none", in: nil, want: metadata.MD{}},
		{name: "simple", in: []string{"x-team: greeter"}, want: metadata.MD{"x-team": {"greeter"}}},
		{name: "no space, upper case key", in: []string{"X-Team:greeter"}, want: metadata.MD{"x-team": {"greeter"}}},
		{name: "colon in value", in: []string{"x-url: http://a:1/"}, want: metadata.MD{"x-url": {"http://a:1/"}}},
		{name: "repeated", in: []string{"a: 1", "a: 2"}, want: metadata.MD{"a": {"1", "2"}}},
		{name: "empty value", in: []string{"a:"}, want: metadata.MD{"a": {""}}},
		{name: "binary", in: []string{"trace-bin: \x01\x02"}, want: metadata.MD{"trace-bin": {"\x01\x02"}}},
		{name: "no colon", in: []string{"x-team"}, wantErr: "want \"key: value\""},
		{name: "empty key", in: []string{": v"}, wantErr: "want \"key: value\""},
		{name: "bad key", in: []string{"x team: v"}, wantErr: "key may only contain"},
		{name: "reserved", in: []string{"grpc-timeout: 1S"}, wantErr: "reserved"},
		{name: "control character", in: []string{"a: b\x01"}, wantErr: "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := header.Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

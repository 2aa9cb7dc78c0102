package web

import (
	"fmt"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// requestJSON is vanguard's JSON codec as connect-go's: a field the
// contract does not have is an error (vanguard's discards it, so a typo in a
// field's name would read as the field left empty), and a request that does
// not decode is INVALID_ARGUMENT (vanguard's would be UNKNOWN, 502).
// Such a request never reaches the gRPC server: it is counted here.
type requestJSON struct {
	*vanguard.JSONCodec
	malformed prometheus.Counter
}

func newRequestJSON(malformed prometheus.Counter) func(vanguard.TypeResolver) vanguard.Codec {
	return func(res vanguard.TypeResolver) vanguard.Codec {
		c := vanguard.NewJSONCodec(res)
		c.UnmarshalOptions.DiscardUnknown = false
		return requestJSON{JSONCodec: c, malformed: malformed}
	}
}

func (c requestJSON) Unmarshal(data []byte, msg proto.Message) error {
	if err := c.JSONCodec.Unmarshal(data, msg); err != nil {
		c.malformed.Inc()
		return connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("the request is not JSON of %s: %w", msg.ProtoReflect().Descriptor().FullName(), err))
	}
	return nil
}

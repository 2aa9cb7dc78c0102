package reliability_test

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

func durationMS(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

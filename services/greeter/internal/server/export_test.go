package server

import "reflect"

// ChangesDefaults reports whether opt, applied to the in-process server's
// defaults, changes any of them, and the error it returns.
func ChangesDefaults(opt Option) (bool, error) {
	o := defaultOptions()
	err := opt(&o)
	return !reflect.DeepEqual(o, defaultOptions()), err
}

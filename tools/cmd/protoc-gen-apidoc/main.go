// Command protoc-gen-apidoc is a protoc plugin that writes the API reference
// of a contract as Markdown: one file per proto package and an index, with
// every field's protovalidate rules in words (see internal/apidoc). buf runs
// it as a local plugin through `go tool` (buf.gen.docs.yaml) and needs
// `strategy: all`, so that it sees every file of a package at once.
package main

import (
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/acme/greeter/tools/internal/apidoc"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "protoc-gen-apidoc:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	req := &pluginpb.CodeGeneratorRequest{}
	if err := proto.Unmarshal(data, req); err != nil {
		return fmt.Errorf("read the CodeGeneratorRequest: %w", err)
	}
	// protogen insists on a Go import path for every file; the docs need
	// none, and the contract's protos leave go_package to buf's managed mode.
	for _, f := range req.GetProtoFile() {
		if f.GetOptions().GetGoPackage() == "" {
			if f.Options == nil {
				f.Options = &descriptorpb.FileOptions{}
			}
			f.Options.GoPackage = proto.String("apidoc.invalid/" + f.GetName())
		}
	}
	gen, err := protogen.Options{}.New(req)
	if err != nil {
		return err
	}
	gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
	if err := apidoc.Generate(gen); err != nil {
		gen.Error(err)
	}
	resp, err := proto.Marshal(gen.Response())
	if err != nil {
		return err
	}
	_, err = out.Write(resp)
	return err
}

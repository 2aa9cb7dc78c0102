// Command contractdist builds the contract's release artifacts into dist/
// (`make dist`): the buf image, the protos tarball, the API reference, the
// npm package and the Python wheel, with SHA256SUMS. Run it from the
// repository root:
//
//	go tool contractdist [-version X.Y.Z] [-out dist]
//	go tool contractdist -check-tools
//
// Without -version the packages get the development version (0.0.0-dev).
// SOURCE_DATE_EPOCH, when set, is the time stamped on archive entries.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/acme/greeter/tools/internal/contractdist"
	"github.com/acme/greeter/tools/internal/sdktools"
)

func main() {
	version := flag.String("version", "", "release version X.Y.Z (the tag api/vX.Y.Z); empty: "+contractdist.Dev.NPM)
	out := flag.String("out", "dist", "output directory, emptied first")
	checkTools := flag.Bool("check-tools", false, "only check for the tools outside Go the SDKs need, and say what is missing")
	flag.Parse()
	if *checkTools {
		if err := sdktools.Check("."); err != nil {
			fmt.Fprintln(os.Stderr, "sdk-tools:", err)
			os.Exit(1)
		}
		fmt.Println("sdk-tools: node, npm, protoc-gen-es, protoc, grpc_python_plugin and Python's grpcio, protobuf, build, installer and twine are installed")
		return
	}
	if err := run(*version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "contractdist:", err)
		os.Exit(1)
	}
}

func run(versionFlag, out string) error {
	version, err := contractdist.ParseVersion(versionFlag)
	if err != nil {
		return err
	}
	epoch, err := contractdist.Epoch()
	if err != nil {
		return err
	}
	artifacts, err := contractdist.Build(context.Background(), ".", out, version, epoch)
	if err != nil {
		return err
	}
	for _, rel := range artifacts {
		info, err := os.Stat(filepath.Join(out, rel))
		if err != nil {
			return err
		}
		fmt.Printf("%9d  %s\n", info.Size(), filepath.Join(out, rel))
	}
	return nil
}

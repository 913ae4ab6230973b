// Command mksif writes a real SIF image built with the sylabs sif package, so
// that tests exercise the on-disk format produced by the reference
// implementation rather than a hand-rolled imitation of it.
//
// The image holds, in this order: an optional definition file, optional JSON
// labels, and a primary system squashfs partition whose payload is size bytes
// of pseudo-random data drawn from a generator seeded with -seed. The payload
// is not a real squashfs filesystem; it only gives each image a chosen size and
// distinct content quickly.
//
// With -signed, the image is signed with the sif integrity package (OpenPGP
// clear-signature over every object group) using a throwaway Ed25519 key
// generated in memory, which is the same mechanism `singularity sign` uses.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/sylabs/sif/v2/pkg/integrity"
	"github.com/sylabs/sif/v2/pkg/sif"
)

type options struct {
	out     string
	arch    string
	deffile string
	labels  string
	size    int64
	seed    int64
	signed  bool
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.out, "o", "", "output SIF path (required)")
	flag.StringVar(&o.arch, "arch", "amd64", "Go architecture name of the primary partition")
	flag.StringVar(&o.deffile, "deffile", "", "path of a definition file to embed (empty: none)")
	flag.StringVar(&o.labels, "labels", "", "labels text to embed verbatim (empty: none)")
	flag.Int64Var(&o.size, "size", 4096, "partition payload size in bytes")
	flag.Int64Var(&o.seed, "seed", 1, "seed of the pseudo-random partition payload")
	flag.BoolVar(&o.signed, "signed", false, "sign the image with a throwaway OpenPGP key")
	flag.Parse()
	return o
}

// descriptorInputs lists the data objects to store, in on-disk order.
func descriptorInputs(o options) ([]sif.DescriptorInput, error) {
	var dis []sif.DescriptorInput

	if o.deffile != "" {
		b, err := os.ReadFile(o.deffile)
		if err != nil {
			return nil, err
		}
		di, err := sif.NewDescriptorInput(sif.DataDeffile, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		dis = append(dis, di)
	}

	if o.labels != "" {
		di, err := sif.NewDescriptorInput(sif.DataLabels, bytes.NewReader([]byte(o.labels)))
		if err != nil {
			return nil, err
		}
		dis = append(dis, di)
	}

	payload := io.LimitReader(rand.New(rand.NewSource(o.seed)), o.size)
	di, err := sif.NewDescriptorInput(sif.DataPartition, payload,
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, o.arch),
	)
	if err != nil {
		return nil, err
	}
	return append(dis, di), nil
}

// sign adds one signature object per object group, as `singularity sign` does.
func sign(f *sif.FileImage) error {
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
	e, err := openpgp.NewEntity("sregtest", "test key", "sregtest@example.invalid", cfg)
	if err != nil {
		return err
	}
	s, err := integrity.NewSigner(f, integrity.OptSignWithEntity(e))
	if err != nil {
		return err
	}
	return s.Sign()
}

func run(o options) error {
	if o.out == "" {
		return fmt.Errorf("-o is required")
	}
	if o.size < 0 {
		return fmt.Errorf("-size must not be negative")
	}
	if o.labels != "" && !json.Valid([]byte(o.labels)) {
		fmt.Fprintln(os.Stderr, "mksif: warning: -labels is not valid JSON; embedding it anyway")
	}

	dis, err := descriptorInputs(o)
	if err != nil {
		return err
	}

	f, err := sif.CreateContainerAtPath(o.out, sif.OptCreateWithDescriptors(dis...))
	if err != nil {
		return err
	}

	if o.signed {
		if err := sign(f); err != nil {
			_ = f.UnloadContainer()
			return err
		}
	}
	return f.UnloadContainer()
}

func main() {
	if err := run(parseFlags()); err != nil {
		fmt.Fprintln(os.Stderr, "mksif:", err)
		os.Exit(1)
	}
}

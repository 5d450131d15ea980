// Command kstatus prints the kstatus verdict (sigs.k8s.io/cli-utils'
// status.Compute, the rules Flux's health checks and kpt use) for Kubernetes
// objects read as YAML or JSON from files or standard input.
//
// Each object, or each item of a List (`kubectl get -o json` output), gives
// one line of JSON: {"kind":..., "namespace":..., "name":..., "status":..., "message":...}.
// procon's tests pipe live objects from the API server through it.
//
//	kubectl get pconn -n demo -o json | kstatus
//	kstatus connection.yaml
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		args = []string{"-"}
	}
	out := json.NewEncoder(stdout)
	for _, arg := range args {
		data, err := read(arg, stdin)
		if err != nil {
			return err
		}
		objects, err := decode(data)
		if err != nil {
			return fmt.Errorf("%s: %w", arg, err)
		}
		for _, obj := range objects {
			result, err := status.Compute(obj)
			if err != nil {
				return fmt.Errorf("%s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
			}
			if err := out.Encode(verdict{
				Kind:      obj.GetKind(),
				Namespace: obj.GetNamespace(),
				Name:      obj.GetName(),
				Status:    result.Status.String(),
				Message:   result.Message,
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func read(arg string, stdin io.Reader) ([]byte, error) {
	if arg == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(arg)
}

// decode reads a stream of YAML or JSON documents; a List contributes its items.
// Each document goes through the apimachinery's unstructured JSON scheme, so
// integers stay int64 as kstatus expects (metadata.generation).
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	var objects []*unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		obj, _, err := unstructured.UnstructuredJSONScheme.Decode(raw, nil, nil)
		if err != nil {
			return nil, err
		}
		switch typed := obj.(type) {
		case *unstructured.UnstructuredList:
			for i := range typed.Items {
				objects = append(objects, &typed.Items[i])
			}
		case *unstructured.Unstructured:
			objects = append(objects, typed)
		default:
			return nil, fmt.Errorf("unexpected object %T", obj)
		}
	}
	if len(objects) == 0 {
		return nil, errors.New("no Kubernetes object in the input")
	}
	return objects, nil
}

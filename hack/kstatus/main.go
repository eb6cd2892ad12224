// Command kstatus evaluates Kubernetes objects with sigs.k8s.io/cli-utils' kstatus library,
// the code Flux, kpt and cli-utils' apply run, so weft's tests check its status conditions
// against the library rather than against a port. Input: JSON objects, one per line, on stdin.
// Output: one JSON line per object: {"status":"Current|InProgress|Failed|Terminating|...",
// "message":"..."} or {"error":"..."}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func evaluate(line []byte) verdict {
	// UnmarshalJSON keeps integers as int64, as the API machinery expects (not float64).
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(line); err != nil {
		return verdict{Error: fmt.Sprintf("not a Kubernetes object: %v", err)}
	}
	res, err := status.Compute(u)
	if err != nil {
		return verdict{Error: err.Error()}
	}
	return verdict{Status: res.Status.String(), Message: res.Message}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		if len(in.Bytes()) == 0 {
			continue
		}
		if err := out.Encode(evaluate(in.Bytes())); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

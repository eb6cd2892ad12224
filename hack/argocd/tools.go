//go:build tools

// Keeps argo-cd's cmd package (the multi-call binary) in go.mod; hack/build-argocd.sh builds it.
package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"

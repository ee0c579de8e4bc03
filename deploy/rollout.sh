#!/usr/bin/env bash
# Roll a release out to one overlay: bash deploy/rollout.sh staging|production TAG [--render]
# Applies the overlay with the image tag TAG (image repository from $IMAGE, default
# registry.example.com/mcplookup), reruns the migration Job, then waits for it and for the rollout.
# --render prints the manifests that would be applied and touches no cluster (the tests run it so).
# KUBECONFIG_DATA, when set, is a kubeconfig's content (the CI secret).
set -euo pipefail
cd "$(dirname "$0")/.."

env_name=${1:?usage: rollout.sh staging|production TAG [--render]}
tag=${2:?usage: rollout.sh staging|production TAG [--render]}
mode=${3:-apply}
image=${IMAGE:-registry.example.com/mcplookup}
case "$env_name" in
    staging) namespace=mcplookup-staging ;;
    production) namespace=mcplookup ;;
    *) echo "rollout.sh: unknown environment $env_name (staging or production)" >&2; exit 2 ;;
esac
if [[ ! "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
    echo "rollout.sh: $tag is not a valid image tag" >&2
    exit 2
fi

# A throwaway overlay on top of the environment's, so the committed files keep their tag.
release=$(mktemp -d "k8s/overlays/.release-$env_name-XXXXXX")
trap 'rm -rf "$release"' EXIT
cat > "$release/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../$env_name]
images:
  - {name: registry.example.com/mcplookup, newName: $image, newTag: "$tag"}
YAML

if [ "$mode" = "--render" ]; then
    kubectl kustomize "$release"
    exit 0
fi
if [ -n "${KUBECONFIG_DATA:-}" ]; then
    KUBECONFIG=$(mktemp)
    export KUBECONFIG
    printf '%s\n' "$KUBECONFIG_DATA" > "$KUBECONFIG"
fi
# A Job's pod template is immutable: the finished Job of the last release goes first.
kubectl -n "$namespace" delete job mcplookup-migrate --ignore-not-found
kubectl apply -k "$release"
kubectl -n "$namespace" wait --for=condition=complete job/mcplookup-migrate --timeout=600s
kubectl -n "$namespace" rollout status deployment/mcplookup --timeout=600s

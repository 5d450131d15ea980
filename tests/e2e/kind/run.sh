#!/usr/bin/env bash
# End to end on kind: build the operator image, create a kind cluster, install
# the chart with the Stripe emulator, apply examples/quickstart/stripe.yaml and
# wait until the connection is Ready.
#
#   make e2e-kind                  # or: tests/e2e/kind/run.sh
#   PROCON_E2E_KEEP=1 make e2e-kind   # keep the cluster to look around
#
# It needs a working Docker (a daemon it can reach) and kind. Where either is
# missing, as on the machines procon is developed on, it prints why it skipped
# and exits 0; tests/unit/test_e2e_kind_script.py runs it to check that path.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
DOCKER=${DOCKER:-docker}
KIND=${KIND:-kind}
PROCON=${PROCON:-$ROOT/.venv/bin/procon}
CLUSTER=${PROCON_E2E_CLUSTER:-procon-e2e}
IMAGE=${PROCON_E2E_IMAGE:-procon:e2e}
SYSTEM_NS=procon-system
APP_NS=procon-e2e
TIMEOUT=${PROCON_E2E_TIMEOUT:-180s}

skip() {
	echo "SKIPPED tests/e2e/kind: $*"
	exit 0
}

command -v "$DOCKER" > /dev/null 2>&1 || skip "docker is not installed ($DOCKER not found)"
"$DOCKER" info > /dev/null 2>&1 || skip "docker cannot reach a container engine (\`$DOCKER info\` failed)"
command -v "$KIND" > /dev/null 2>&1 || skip "kind is not installed ($KIND not found)"

# kubectl and helm: the ones on PATH, or those the project builds for its
# local control plane.
if ! command -v kubectl > /dev/null 2>&1 || ! command -v helm > /dev/null 2>&1; then
	PATH="$("$PROCON" dev cluster build):$PATH"
fi

WORK=$(mktemp -d)
export KUBECONFIG=$WORK/kubeconfig
cleanup() {
	status=$?
	if [ "$status" -ne 0 ]; then
		echo "--- failed; state of the cluster:" >&2
		kubectl get pods,pconn -A -o wide >&2 || true
		kubectl describe pconn -n "$APP_NS" >&2 || true
		kubectl logs -n "$SYSTEM_NS" deploy/procon --tail=100 >&2 || true
	fi
	if [ -z "${PROCON_E2E_KEEP:-}" ]; then
		"$KIND" delete cluster --name "$CLUSTER" > /dev/null 2>&1 || true
	else
		echo "kept kind cluster $CLUSTER; KUBECONFIG=$KUBECONFIG"
	fi
	exit "$status"
}
trap cleanup EXIT

echo "--- building $IMAGE"
"$DOCKER" build -t "$IMAGE" "$ROOT"

echo "--- creating kind cluster $CLUSTER"
"$KIND" create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG" --wait 120s
"$KIND" load docker-image "$IMAGE" --name "$CLUSTER"

# The operator's namespace enforces Pod Security `restricted`: the chart's pod must pass it.
kubectl create namespace "$SYSTEM_NS"
kubectl label namespace "$SYSTEM_NS" pod-security.kubernetes.io/enforce=restricted
kubectl create namespace "$APP_NS"

echo "--- the Stripe emulator"
kubectl create configmap stripe-emulator-fixture -n "$SYSTEM_NS" \
	--from-file=stripe-emulator.yaml="$ROOT/examples/quickstart/stripe-emulator.yaml"
sed "s|image: procon:e2e|image: $IMAGE|" "$ROOT/tests/e2e/kind/stripe-emulator.yaml" | kubectl apply -n "$SYSTEM_NS" -f -
kubectl rollout status -n "$SYSTEM_NS" deploy/stripe-emulator --timeout="$TIMEOUT"

echo "--- the chart"
helm install procon "$ROOT/charts/procon" -n "$SYSTEM_NS" --wait --timeout "$TIMEOUT" \
	--set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
	--set config.clusterName=kind-e2e \
	--set config.processors.stripe.apiBase="http://stripe-emulator.$SYSTEM_NS.svc:12111"

echo "--- the quickstart connection"
kubectl apply -n "$APP_NS" -f "$ROOT/examples/quickstart/stripe.yaml"
kubectl wait -n "$APP_NS" --for=condition=Ready --timeout="$TIMEOUT" pconn/quickstart-stripe
kubectl get secret -n "$APP_NS" quickstart-stripe-webhook > /dev/null
kubectl get pconn -n "$APP_NS" -o wide
echo "PASSED tests/e2e/kind: quickstart-stripe is Ready on kind"

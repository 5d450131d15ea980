{{/*
Names and labels. The usual Helm conventions: a fullname of at most 63
characters, the standard app.kubernetes.io labels on everything, and a
selector made of the two labels that never change across upgrades.
*/}}

{{- define "procon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "procon.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "procon.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "procon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "procon.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "procon.labels" -}}
helm.sh/chart: {{ include "procon.chart" . }}
{{ include "procon.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: procon
{{- end }}

{{/* The CRD carries name and part-of from its generator; these are the release's. */}}
{{- define "procon.crdLabels" -}}
helm.sh/chart: {{ include "procon.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "procon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "procon.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The user name the API server gives the operator's ServiceAccount token. */}}
{{- define "procon.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "procon.serviceAccountName" . }}
{{- end }}

{{- define "procon.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
What the operator does in the API, rule by rule; charts/procon/README.md
explains each one. The same list is bound cluster-wide (watchNamespaces
empty) or as a Role in each watched namespace.
*/}}
{{- define "procon.operatorRules" -}}
# Watch connections (kopf lists and watches them), read one before each
# reconcile, and patch its metadata: procon.dev/* annotations and the
# procon.dev/finalizer finalizer.
- apiGroups: ["procon.dev"]
  resources: ["processorconnections"]
  verbs: ["get", "list", "watch", "patch"]
# Write the conditions, observedGeneration, account and webhook status.
- apiGroups: ["procon.dev"]
  resources: ["processorconnections/status"]
  verbs: ["patch"]
# Signing-secret Secrets carry an ownerReference with blockOwnerDeletion to
# their connection; with the OwnerReferencesPermissionEnforcement admission
# plugin that requires update on the owner's finalizers subresource.
- apiGroups: ["procon.dev"]
  resources: ["processorconnections/finalizers"]
  verbs: ["update"]
# Read credential Secrets and the signing-secret Secrets (get), and learn
# when one changes (list and watch: kopf's on.event). Write the
# signing-secret Secrets (create, patch); the ValidatingAdmissionPolicy
# limits every write to Secrets labelled app.kubernetes.io/managed-by=procon.
# No update, no delete: the garbage collector removes them with their owner.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The events procon posts on a connection (kubectl describe pconn).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{/* The label that assigns a connection to a shard (README.md, Sharding). */}}
{{- define "procon.shardLabel" -}}
procon.dev/shard
{{- end }}

{{/*
The name of one operator instance's Deployment and of the Lease it elects its
leader with: the full name, or `<fullname>-<shard>` for a shard.
*/}}
{{- define "procon.instanceName" -}}
{{- if .shard }}
{{- printf "%s-%s" (include "procon.fullname" .root) .shard | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "procon.fullname" .root }}
{{- end }}
{{- end }}

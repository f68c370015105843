{{/*
Names, labels and small values shared by the templates.
*/}}

{{- define "portalis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, plus the chart name unless the release name already contains it.
Truncated to 63 characters, the DNS label limit.
*/}}
{{- define "portalis.fullname" -}}
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

{{- define "portalis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portalis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portalis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "portalis.labels" -}}
helm.sh/chart: {{ include "portalis.chart" . }}
{{ include "portalis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: portalis
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "portalis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portalis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image: repository@digest when a digest is given, else repository:tag (tag defaults to appVersion).
*/}}
{{- define "portalis.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "portalis.webhookSecretName" -}}
{{- default (printf "%s-webhook" (include "portalis.fullname" .)) .Values.webhook.existingSecret }}
{{- end }}

{{- define "portalis.webhookSecretKey" -}}
{{- if .Values.webhook.existingSecret }}
{{- .Values.webhook.existingSecretKey }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/*
Namespaces whose Secrets the operator may read, one per line: .Values.clusterNamespaces, or the release
namespace when the list is empty.
*/}}
{{- define "portalis.clusterNamespaces" -}}
{{- $namespaces := .Values.clusterNamespaces | default (list .Release.Namespace) }}
{{- range $namespaces | uniq }}
{{ . }}
{{- end }}
{{- end }}

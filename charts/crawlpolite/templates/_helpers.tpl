{{/* Names. With release name "crawlpolite" they are config/'s names exactly. */}}
{{- define "crawlpolite.fullname" -}}
{{- if .Values.fullnameOverride -}}{{ .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" }}
{{- end -}}
{{- end -}}

{{/* The manager's name: Deployment, ServiceAccount, Service, RBAC. */}}
{{- define "crawlpolite.manager" -}}{{ include "crawlpolite.fullname" . }}-webhook{{- end -}}
{{- define "crawlpolite.redis" -}}{{ include "crawlpolite.fullname" . }}-redis{{- end -}}

{{- define "crawlpolite.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: crawlpolite
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The manager's pods; the webhook's objectSelector never sends these to itself. */}}
{{- define "crawlpolite.managerSelector" -}}
app.kubernetes.io/name: {{ include "crawlpolite.manager" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "crawlpolite.redisSelector" -}}
app.kubernetes.io/name: {{ include "crawlpolite.redis" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "crawlpolite.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The sidecars' Redis URL ("" for redis.mode none). */}}
{{- define "crawlpolite.redisURL" -}}
{{- if eq .Values.redis.mode "bundled" -}}
redis://{{ include "crawlpolite.redis" . }}.{{ .Release.Namespace }}.svc:6379
{{- else if eq .Values.redis.mode "external" -}}
{{ required "redis.url is required with redis.mode=external" .Values.redis.url }}
{{- end -}}
{{- end -}}

{{/* The Secret (in the release's namespace, key "password") the manager delivers to injected namespaces. */}}
{{- define "crawlpolite.redisSecret" -}}
{{- if eq .Values.redis.mode "bundled" -}}{{ include "crawlpolite.redis" . }}-auth
{{- else if eq .Values.redis.mode "external" -}}{{ .Values.redis.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "crawlpolite.certSecret" -}}
{{- if eq .Values.certs.mode "external" -}}
{{ required "certs.external.secretName is required with certs.mode=external" .Values.certs.external.secretName }}
{{- else -}}
{{ include "crawlpolite.manager" . }}-tls
{{- end -}}
{{- end -}}

{{/* Namespaces never injected: the webhook's namespaceSelector and the manager's --exclude-namespaces. */}}
{{- define "crawlpolite.excludedNamespaces" -}}
{{- $l := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace -}}
{{- range .Values.webhook.excludeNamespaces }}{{ $l = append $l . }}{{ end -}}
{{- toJson (uniq $l) -}}
{{- end -}}

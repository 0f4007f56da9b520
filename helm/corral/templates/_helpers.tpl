{{/*
_helpers.tpl: names and labels. Every named template of this chart takes a context with .Values (corral's values)
and .Release: the chart's own templates pass their context, a parent chart passes
(dict "Values" .Values.corral "Release" .Release) (README "Deploy on Kubernetes"). Names never use .Chart, so the
ConfigMap and Secret the subchart renders and the references the parent renders agree.
*/}}

{{- define "corral.name" -}}
{{- default "corral" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "corral.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "corral.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The label every pod with this corral sidecar carries; the admin Service, NetworkPolicy and PDB select on it. */}}
{{- define "corral.podLabels" -}}
corral.sidecar/instance: {{ include "corral.fullname" . }}
{{- end -}}

{{- define "corral.selectorLabels" -}}
app.kubernetes.io/name: {{ include "corral.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "corral.labels" -}}
{{ include "corral.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service | default "Helm" }}
app.kubernetes.io/part-of: corral
{{- end -}}

{{- define "corral.image" -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}

{{- define "corral.tokenSecret" -}}
{{- .Values.adminToken.existingSecret | default (printf "%s-admin-token" (include "corral.fullname" .)) -}}
{{- end -}}

{{- define "corral.memcachedName" -}}
{{- printf "%s-memcached" (include "corral.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: set, or preStop + corral's drain + the app's own shutdown */}}
{{- define "corral.gracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add .Values.drain.preStopSeconds .Values.drain.drainSeconds .Values.drain.appShutdownSeconds -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
_config.tpl: corral.config, the corral.yaml the ConfigMap holds. values.config is copied as it is; the chart owns
listen (every address, port ports.http), admin (ports.admin, token from CORRAL_ADMIN_TOKEN), upstream.url (the app on
127.0.0.1:upstream.port), drain_timeout (drain.drainSeconds, which the grace period is computed from), tier.memcached.servers (memcached.servers, or the chart's StatefulSet) and routes. Empty
sections are left out. tests/helm/run.sh runs `corral -t` on what this renders for every values file it tests.
*/}}
{{- define "corral.memcachedServers" -}}
{{- $v := .Values.memcached -}}
{{- $out := list -}}
{{- if $v.statefulSet.enabled -}}
{{- if $v.servers -}}{{- fail "memcached: set servers or statefulSet.enabled, not both" -}}{{- end -}}
{{- $name := include "corral.memcachedName" . -}}
{{- range $i := until (int $v.statefulSet.replicas) -}}
{{- $out = append $out (printf "%s-%d.%s.%s.svc.%s:%d" $name $i $name $.Release.Namespace $v.statefulSet.clusterDomain (int $v.statefulSet.port)) -}}
{{- end -}}
{{- else -}}
{{- $out = $v.servers -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{- define "corral.config" -}}
{{- $v := .Values -}}
{{- $cfg := deepCopy $v.config -}}
{{- range $k, $x := $v.config -}}
{{- if and (kindIs "map" $x) (empty $x) -}}{{- $_ := unset $cfg $k -}}{{- end -}}
{{- end -}}
{{- range $k := list "listen" "admin" "routes" -}}
{{- if hasKey $cfg $k -}}{{- fail (printf "config.%s: the chart writes it; use the chart's values (ports, adminToken, routes)" $k) -}}{{- end -}}
{{- end -}}
{{- $_ := set $cfg "listen" (list (dict "address" (printf "0.0.0.0:%d" (int $v.ports.http)))) -}}
{{- $up := deepCopy (get $cfg "upstream" | default dict) -}}
{{- if hasKey $up "url" -}}{{- fail "config.upstream.url: the chart writes it from upstream.port" -}}{{- end -}}
{{- $_ = set $up "url" (printf "http://127.0.0.1:%d" (int $v.upstream.port)) -}}
{{- $_ = set $cfg "upstream" $up -}}
{{- $_ = set $cfg "admin" (dict "address" (printf "0.0.0.0:%d" (int $v.ports.admin)) "token_env" "CORRAL_ADMIN_TOKEN") -}}
{{- $servers := include "corral.memcachedServers" . | fromJsonArray -}}
{{- if $servers -}}
{{- $tier := deepCopy (get $cfg "tier" | default dict) -}}
{{- $mc := deepCopy (get $tier "memcached" | default dict) -}}
{{- if hasKey $mc "servers" -}}{{- fail "config.tier.memcached.servers: set memcached.servers instead" -}}{{- end -}}
{{- $_ = set $mc "servers" $servers -}}
{{- $_ = set $tier "memcached" $mc -}}
{{- $_ = set $cfg "tier" $tier -}}
{{- end -}}
{{- if hasKey $cfg "drain_timeout" -}}{{- fail "config.drain_timeout: the chart writes it from drain.drainSeconds (the grace period counts on it)" -}}{{- end -}}
{{- $_ = set $cfg "drain_timeout" (printf "%ds" (int $v.drain.drainSeconds)) -}}
{{- if $v.routes -}}{{- $_ = set $cfg "routes" $v.routes -}}{{- end -}}
# corral.yaml rendered by the corral Helm chart (release {{ .Release.Name }}); edit the chart's values, not this file.
{{ toYaml $cfg }}
{{- end -}}

{{/* The ConfigMap that holds corral.yaml; the chart renders it, and a parent chart may include it instead. */}}
{{- define "corral.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "corral.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "corral.labels" . | nindent 4 }}
data:
  corral.yaml: |
    {{- include "corral.config" . | nindent 4 }}
{{- end -}}

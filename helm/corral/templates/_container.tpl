{{/*
_container.tpl: the pieces of a pod spec with corral in it, for the chart's Deployment and for a parent chart's own
pod spec (helm/examples/parent):
  corral.container       the container (a list item: put it under initContainers when .Values.nativeSidecar,
                         under containers otherwise; corral.sidecarKey names which)
  corral.volumes         the volumes it mounts (list items)
  corral.podLabels       (in _helpers.tpl) the label the admin Service, NetworkPolicy and PDB select on
  corral.podAnnotations  the config checksum (a change of corral.yaml rolls the pods) and the scrape annotations
With nativeSidecar the container carries restartPolicy: Always (Kubernetes 1.29+): started, and ready through its
startup probe, before the app; stopped after it. Its preStop sleep lets endpoints drop the pod before corral's drain.
*/}}
{{- define "corral.sidecarKey" -}}
{{- if .Values.nativeSidecar -}}initContainers{{- else -}}containers{{- end -}}
{{- end -}}

{{- define "corral.probe" -}}
httpGet:
  path: {{ .probe.path }}
  port: admin
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}

{{- define "corral.container" -}}
- name: corral
  image: {{ include "corral.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if .Values.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args: ["-c", "/etc/corral/corral.yaml"]
  ports:
    - name: corral-http
      containerPort: {{ .Values.ports.http }}
      protocol: TCP
    - name: admin
      containerPort: {{ .Values.ports.admin }}
      protocol: TCP
  env:
    - name: CORRAL_ADMIN_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ include "corral.tokenSecret" . }}
          key: {{ .Values.adminToken.key }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:
    {{- include "corral.probe" (dict "probe" .Values.probes.startup) | nindent 4 }}
  livenessProbe:
    {{- include "corral.probe" (dict "probe" .Values.probes.liveness) | nindent 4 }}
  readinessProbe:
    {{- include "corral.probe" (dict "probe" .Values.probes.readiness) | nindent 4 }}
  lifecycle:
    preStop:
      exec:
        command: ["/bin/sleep", "{{ .Values.drain.preStopSeconds }}"]
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: corral-config
      mountPath: /etc/corral
      readOnly: true
    - name: corral-tmp
      mountPath: /tmp
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{- define "corral.volumes" -}}
- name: corral-config
  configMap:
    name: {{ include "corral.fullname" . }}
- name: corral-tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{- define "corral.podAnnotations" -}}
checksum/corral-config: {{ include "corral.config" . | sha256sum }}
{{- if .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.ports.admin | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/* Names and labels, the usual Helm way. */}}
{{- define "teleport-mattermost.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "teleport-mattermost.fullname" -}}
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

{{- define "teleport-mattermost.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "teleport-mattermost.selectorLabels" -}}
app.kubernetes.io/name: {{ include "teleport-mattermost.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "teleport-mattermost.labels" -}}
helm.sh/chart: {{ include "teleport-mattermost.chart" . }}
{{ include "teleport-mattermost.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Where things are mounted in the container; the rendered TOML points at these paths. */}}
{{- define "teleport-mattermost.configPath" -}}/etc/teleport-mattermost.toml{{- end }}
{{- define "teleport-mattermost.identityDir" -}}/var/lib/teleport/plugins/mattermost/teleport-identity{{- end }}
{{- define "teleport-mattermost.tokenPath" -}}/var/lib/teleport/plugins/mattermost/mattermost_token{{- end }}
{{- define "teleport-mattermost.reviewDir" -}}/var/lib/teleport/plugins/mattermost/review{{- end }}
{{- define "teleport-mattermost.port" -}}8081{{- end }}

{{/* The Secret holding the Mattermost token: the user's, or the one this chart creates. */}}
{{- define "teleport-mattermost.tokenSecretName" -}}
{{- if .Values.mattermost.tokenFromSecret }}
{{- .Values.mattermost.tokenFromSecret }}
{{- else }}
{{- printf "%s-secret" (include "teleport-mattermost.fullname" .) }}
{{- end }}
{{- end }}

{{/* Fails the render with a message naming the value to set, before anything is applied. */}}
{{- define "teleport-mattermost.validate" -}}
{{- $missing := list }}
{{- if not .Values.teleport.address }}
{{- $missing = append $missing "teleport.address (the Auth or Proxy address, e.g. teleport.example.com:443)" }}
{{- end }}
{{- if not .Values.teleport.identitySecretName }}
{{- $missing = append $missing "teleport.identitySecretName (the Secret holding the identity file from tbot or `tctl auth sign --format=file`)" }}
{{- end }}
{{- if not .Values.mattermost.url }}
{{- $missing = append $missing "mattermost.url (the Mattermost base URL, e.g. https://mattermost.example.com)" }}
{{- end }}
{{- if and (not .Values.mattermost.token) (not .Values.mattermost.tokenFromSecret) }}
{{- $missing = append $missing "mattermost.token or mattermost.tokenFromSecret (the bot's access token, or the Secret holding it)" }}
{{- end }}
{{- if .Values.review.enabled }}
{{- if not .Values.review.publicAddr }}
{{- $missing = append $missing "review.publicAddr (the URL at which Mattermost reaches this service; needed with review.enabled)" }}
{{- end }}
{{- if not .Values.review.existingSecret }}
{{- $missing = append $missing "review.existingSecret (the Secret holding the button-signing key; needed with review.enabled)" }}
{{- end }}
{{- end }}
{{- if $missing }}
{{- fail (printf "\n\nteleport-mattermost: set these values:\n  - %s\n" (join "\n  - " $missing)) }}
{{- end }}
{{- if and .Values.tbot .Values.tbot.enabled }}
{{- fail "\n\nteleport-mattermost: tbot.enabled (from the upstream chart) is not supported: run tbot on its own and set teleport.identitySecretName to the Secret it writes\n" }}
{{- end }}
{{- if and .Values.mattermost.token .Values.mattermost.tokenFromSecret }}
{{- fail "\n\nteleport-mattermost: set mattermost.token or mattermost.tokenFromSecret, not both\n" }}
{{- end }}
{{- end }}

{{/*
The keys of one reminder schedule ([reminders] or [reminders.roles.<role>]); keys left out
are not written (a role's table then keeps the section's value).
*/}}
{{- define "teleport-mattermost.reminderSchedule" -}}
{{- if hasKey . "remindAfter" }}
remind_after = [{{ range $i, $d := .remindAfter }}{{ if $i }}, {{ end }}{{ $d | toString | toJson }}{{ end }}]
{{- end }}
{{- with .escalateAfter }}
escalate_after = {{ . | toString | toJson }}
{{- end }}
{{- if .escalateTo }}
escalate_to = [{{ range $i, $r := .escalateTo }}{{ if $i }}, {{ end }}{{ $r | toString | toJson }}{{ end }}]
{{- end }}
{{- if hasKey . "mentionChannel" }}
mention_channel = {{ .mentionChannel }}
{{- end }}
{{- with .expiryNotice }}
expiry_notice = {{ . | toString | toJson }}
{{- end }}
{{- end }}

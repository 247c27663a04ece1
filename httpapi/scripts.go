package httpapi

import (
	"strings"
	"text/template"
)

// scriptData fills a bootstrap script. Every value is checked before it
// gets here (APIURL by validateAPIURL or validHost, VaultID by isVaultID,
// the token by isBootstrapToken), so none can contain a quote and the
// scripts can place them inside single quotes safely.
type scriptData struct {
	APIURL      string
	VaultID     string
	RegisterURL string
}

// shScript is the POSIX sh bootstrap script. It parses the registration
// response without jq, and it needs only machineId from it (an id without
// quotes). It writes identity.json as the server's compact JSON object with
// privateKeyPath appended before the closing brace. Names with any
// characters therefore survive unchanged.
var shScript = template.Must(template.New("sh").Parse(`#!/bin/sh
# Keyward machine bootstrap. It creates an Ed25519 key pair on this machine,
# registers the public key with Keyward and writes identity.json and
# private.pem under ${KEYWARD_HOME:-$HOME/.keyward}/vaults/<vault id>/.
# The private key never leaves this machine.
set -eu
umask 077

KEYWARD_API_URL='{{.APIURL}}'
KEYWARD_VAULT_ID='{{.VaultID}}'
KEYWARD_REGISTER_URL='{{.RegisterURL}}'

fail() {
	printf 'keyward: error: %s\n' "$*" >&2
	exit 1
}

json_escape() {
	printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'
}

command -v openssl >/dev/null 2>&1 || fail "openssl is required; install it (for example: apt-get install openssl) and run this command again"
command -v curl >/dev/null 2>&1 || fail "curl is required; install it and run this command again"

base_dir="${KEYWARD_HOME:-${HOME:?HOME is not set; set KEYWARD_HOME}/.keyward}"
case "$base_dir" in
/*) ;;
*) base_dir="$(pwd)/$base_dir" ;;
esac
vault_dir="$base_dir/vaults/$KEYWARD_VAULT_ID"
if [ -e "$vault_dir/identity.json" ]; then
	fail "an identity already exists at $vault_dir/identity.json; remove it or set KEYWARD_HOME to another folder"
fi

for dir in "$base_dir" "$base_dir/vaults" "$vault_dir"; do
	if [ ! -d "$dir" ]; then
		mkdir "$dir" || fail "cannot create $dir"
		chmod 700 "$dir"
	fi
done
chmod 700 "$vault_dir"

key_tmp="$vault_dir/private.pem.tmp.$$"
response_tmp="$vault_dir/register.json.tmp.$$"
trap 'rm -f "$key_tmp" "$response_tmp"' EXIT
trap 'exit 1' HUP INT TERM

openssl genpkey -algorithm Ed25519 -out "$key_tmp" 2>/dev/null ||
	fail "openssl cannot generate an Ed25519 key; OpenSSL 1.1.1 or later is required"
chmod 600 "$key_tmp"
public_key=$(openssl pkey -in "$key_tmp" -pubout -outform DER | tail -c 32 | openssl base64 -A) ||
	fail "openssl cannot export the public key"

host_name=$(hostname 2>/dev/null || uname -n)
status=$(curl -sS -o "$response_tmp" -w '%{http_code}' -X POST \
	-H 'Content-Type: application/json' \
	--data "{\"publicKey\":\"$public_key\",\"hostname\":\"$(json_escape "$host_name")\"}" \
	"$KEYWARD_REGISTER_URL") || fail "cannot reach $KEYWARD_API_URL"
response=$(cat "$response_tmp")
if [ "$status" != "201" ]; then
	message=$(printf '%s' "$response" | sed -n 's/.*"error":"\([^"]*\)".*/\1/p')
	fail "registration failed (HTTP $status): ${message:-$response}"
fi

case "$response" in
'{'*'}') ;;
*) fail "unexpected registration response: $response" ;;
esac
machine_id=$(printf '%s' "$response" | sed -n 's/.*"machineId":"\([0-9a-f-]*\)".*/\1/p')
[ -n "$machine_id" ] || fail "registration response has no machineId: $response"

mv "$key_tmp" "$vault_dir/private.pem"
printf '%s,"privateKeyPath":"%s"}\n' "${response%?}" "$(json_escape "$vault_dir/private.pem")" >"$vault_dir/identity.json"
chmod 600 "$vault_dir/private.pem" "$vault_dir/identity.json"

echo "Registered machine $machine_id in vault $KEYWARD_VAULT_ID."
echo "Identity: $vault_dir/identity.json"
echo "An operator must approve the machine before it can read secrets."
`))

// psScript is the PowerShell bootstrap script (Windows PowerShell 5.1 and
// PowerShell 7). It needs openssl on PATH. It reports errors with throw,
// not exit, because it runs through Invoke-Expression and exit would close
// the user's session.
var psScript = template.Must(template.New("ps").Parse(`# Keyward machine bootstrap. It creates an Ed25519 key pair on this machine,
# registers the public key with Keyward and writes identity.json and
# private.pem under $env:KEYWARD_HOME (default ~\.keyward)\vaults\<vault id>\.
# The private key never leaves this machine.
$ErrorActionPreference = 'Stop'
$KeywardApiUrl = '{{.APIURL}}'
$KeywardVaultId = '{{.VaultID}}'
$KeywardRegisterUrl = '{{.RegisterURL}}'

if (-not (Get-Command openssl -ErrorAction SilentlyContinue)) {
    throw 'keyward: error: openssl is required on PATH (for example from Git for Windows); install it and run this command again'
}

$BaseDir = if ($env:KEYWARD_HOME) { $env:KEYWARD_HOME } else { Join-Path $HOME '.keyward' }
$VaultDir = Join-Path (Join-Path $BaseDir 'vaults') $KeywardVaultId
$IdentityPath = Join-Path $VaultDir 'identity.json'
$KeyPath = Join-Path $VaultDir 'private.pem'
if (Test-Path $IdentityPath) {
    throw "keyward: error: an identity already exists at $IdentityPath; remove it or set KEYWARD_HOME to another folder"
}
New-Item -ItemType Directory -Force -Path $VaultDir | Out-Null

function Set-OwnerOnly([string]$Path, [string]$Mode) {
    if ($IsLinux -or $IsMacOS) {
        & chmod $Mode $Path
    } else {
        & icacls $Path /inheritance:r /grant:r "$($env:USERNAME):(F)" | Out-Null
    }
}
Set-OwnerOnly $VaultDir '700'

$TmpKey = "$KeyPath.tmp"
$TmpDer = "$KeyPath.pub.der"
try {
    & openssl genpkey -algorithm Ed25519 -out $TmpKey
    if ($LASTEXITCODE -ne 0) { throw 'openssl cannot generate an Ed25519 key; OpenSSL 1.1.1 or later is required' }
    Set-OwnerOnly $TmpKey '600'
    & openssl pkey -in $TmpKey -pubout -outform DER -out $TmpDer
    if ($LASTEXITCODE -ne 0) { throw 'openssl cannot export the public key' }
    $Der = [System.IO.File]::ReadAllBytes($TmpDer)
    $PublicKey = [Convert]::ToBase64String($Der[($Der.Length - 32)..($Der.Length - 1)])
    $Body = @{ publicKey = $PublicKey; hostname = [System.Net.Dns]::GetHostName() } | ConvertTo-Json -Compress
    try {
        $Resp = Invoke-RestMethod -Method Post -Uri $KeywardRegisterUrl -ContentType 'application/json' -Body $Body
    } catch {
        throw "registration at $KeywardApiUrl failed: $($_.ErrorDetails.Message) $($_.Exception.Message)"
    }
    Move-Item -Force $TmpKey $KeyPath
} catch {
    Remove-Item -ErrorAction SilentlyContinue $TmpKey
    throw "keyward: error: $($_.Exception.Message)"
} finally {
    Remove-Item -ErrorAction SilentlyContinue $TmpDer
}

$Identity = [ordered]@{
    machineId      = $Resp.machineId
    machineName    = $Resp.machineName
    vaultId        = $Resp.vaultId
    apiUrl         = $Resp.apiUrl
    privateKeyPath = (Resolve-Path $KeyPath).Path
}
if ($Resp.expiresAt) { $Identity.expiresAt = $Resp.expiresAt }
[System.IO.File]::WriteAllText($IdentityPath, ($Identity | ConvertTo-Json))
Set-OwnerOnly $KeyPath '600'
Set-OwnerOnly $IdentityPath '600'

Write-Host "Registered machine $($Resp.machineId) in vault $KeywardVaultId."
Write-Host "Identity: $IdentityPath"
Write-Host 'An operator must approve the machine before it can read secrets.'
`))

// renderScript fills the sh or PowerShell template.
func renderScript(tmpl *template.Template, data scriptData) (string, error) {
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

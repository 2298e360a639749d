# install.ps1: installs tentacle (a drop-in replacement for the Octopus
# Deploy Tentacle agent) on Windows from a release feed, verified, with the
# feed's MSI: the Windows counterpart of install.sh.
#
#   & ([scriptblock]::Create((irm https://<feed>/install.ps1)))
#   .\install.ps1 -Version 1.4 -Feed https://mirror.example/tentacle
#
# Nothing is installed before the MSI's SHA-256 matches the feed's
# checksums.txt (and, when minisign.exe is on the PATH and a public key is
# given, the signature of checksums.txt matches too). Running it again with
# the same version installed does nothing and exits 0. The MSI installs
# C:\Program Files\Octopus Deploy\Tentacle\Tentacle.exe (or -InstallLocation)
# and replaces any other version of ours, and upstream's Tentacle MSI.
#
# NOT RUN BY CI: no PowerShell can be had on the Linux machine the tests run
# on, so this script is kept small; its names (the MSI, the registry key)
# are checked against the Go code by scripts/install_ps1_test.go, and the
# MSI it runs is installed for real under Wine by packaging/msi_test.go.
# Windows PowerShell 5.1 and PowerShell 7 syntax only.
#
# Exit codes (as install.sh's):
#   0  installed, or that version was already installed
#   10 not an administrator
#   11 the feed cannot be reached or read
#   12 this machine's architecture has no build (the MSI is for x64 only)
#   13 no version in the feed matches -Version
#   14 checksum or signature mismatch (nothing was installed)
#   16 msiexec failed to install the MSI
[CmdletBinding()]
param(
    # latest (the newest non-prerelease), an exact version (1.4.2,
    # 1.5.0-rc.1) or a prefix (1.4: the newest 1.4.x).
    [string]$Version = "latest",
    # https://..., file:///C:/dir, or a directory. Default:
    # $env:TENTACLE_RELEASES_FEED, else the project's feed (a PLACEHOLDER
    # until it publishes one, as in install.sh).
    [string]$Feed = $(if ($env:TENTACLE_RELEASES_FEED) { $env:TENTACLE_RELEASES_FEED } else { "https://github.com/tentacle-go/tentacle/releases/download/feed" }),
    # minisign public key (RW...) checksums.txt is signed with.
    [string]$PubKey = $env:TENTACLE_RELEASES_PUBKEY,
    # Where the MSI installs Tentacle.exe on a first install (an upgrade
    # stays where the installed version is).
    [string]$InstallLocation = "",
    [switch]$DryRun
)
$ErrorActionPreference = "Stop"
# The key the MSI records its install in (provision/release.MSIRegistryKey).
$RegistryKey = "HKLM:\Software\tentacle-go\Tentacle"

function Fail([int]$Code, [string]$Message) {
    [Console]::Error.WriteLine("install.ps1: error: $Message")
    exit $Code
}
function Say([string]$Message) { Write-Host "install.ps1: $Message" }

# Fetch copies $Name from the feed to $Dest.
function Fetch([string]$Name, [string]$Dest) {
    try {
        if ($Feed -match '^https?://') {
            Invoke-WebRequest -UseBasicParsing -Uri ($Feed.TrimEnd('/') + "/" + $Name) -OutFile $Dest
        } else {
            $dir = $Feed -replace '^file:///', ''
            Copy-Item -LiteralPath (Join-Path $dir $Name) -Destination $Dest
        }
    } catch {
        Fail 11 "cannot read $Name from the feed $Feed ($($_.Exception.Message)); check -Feed."
    }
}

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $DryRun -and -not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail 10 "installing needs an elevated PowerShell (Run as administrator)."
}
$arch = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
if ($arch -ne "AMD64") {
    Fail 12 "the MSI is built for x64 (AMD64) Windows only, not $arch; use the zip archive from the feed."
}
# Windows PowerShell 5.1 may not offer TLS 1.2 by default.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

$tmp = Join-Path ([IO.Path]::GetTempPath()) ("tentacle-install-" + [Guid]::NewGuid())
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
    Fetch "index.json" "$tmp\index.json"
    $index = Get-Content -Raw "$tmp\index.json" | ConvertFrom-Json
    if ($index.schema -ne 1) {
        Fail 11 "$Feed/index.json has schema $($index.schema); this install.ps1 understands schema 1. Get a newer one from the same feed."
    }
    # versions are newest first (packaging/README.md).
    $chosen = $null
    foreach ($v in $index.versions) {
        $ok = switch -regex ($Version) {
            '^latest$' { -not $v.prerelease; break }
            '^\d+\.\d+\.\d+' { $v.version -eq $Version; break }
            default { (-not $v.prerelease) -and $v.version.StartsWith("$Version.") }
        }
        if ($ok) { $chosen = $v.version; break }
    }
    if (-not $chosen) {
        Fail 13 "no version in the feed $Feed matches -Version $Version (it has: $(($index.versions | ForEach-Object { $_.version }) -join ', '))."
    }
    $asset = "tentacle_$($chosen)_windows_amd64.msi"
    Say "feed $Feed; version $chosen (-Version $Version): $asset"

    $installed = Get-ItemProperty -Path $RegistryKey -Name InstallLocation -ErrorAction SilentlyContinue
    if ($installed) {
        $exe = Join-Path $installed.InstallLocation "Tentacle.exe"
        $current = (& $exe version 2>$null | Select-Object -First 1)
        if ($current -eq $chosen) {
            Say "tentacle $chosen is already installed ($exe); nothing to do."
            exit 0
        }
        Say "tentacle $current is installed ($exe); it will be replaced by $chosen."
    }
    if ($DryRun) {
        Say "dry run: would download $Feed/$chosen/$asset, verify its SHA-256 against checksums.txt and run msiexec /i $asset /qn; nothing was changed."
        exit 0
    }

    Fetch "$chosen/checksums.txt" "$tmp\checksums.txt"
    if ($PubKey -and (Get-Command minisign.exe -ErrorAction SilentlyContinue)) {
        Fetch "$chosen/checksums.txt.minisig" "$tmp\checksums.txt.minisig"
        & minisign.exe -V -q -P $PubKey -m "$tmp\checksums.txt"
        if ($LASTEXITCODE -ne 0) { Fail 14 "the signature of checksums.txt does not match the key $PubKey; nothing was installed." }
    } elseif ($PubKey) {
        Say "minisign.exe is not on the PATH: the signature of checksums.txt is not checked (the SHA-256 is)."
    }
    $line = Get-Content "$tmp\checksums.txt" | Where-Object { $_ -match ("^[0-9a-f]{64}  " + [regex]::Escape($asset) + "$") } | Select-Object -First 1
    if (-not $line) { Fail 11 "$Feed/$chosen/checksums.txt does not list $asset." }
    $want = $line.Substring(0, 64)
    Say "downloading $asset"
    Fetch "$chosen/$asset" "$tmp\$asset"
    $got = (Get-FileHash -Algorithm SHA256 -LiteralPath "$tmp\$asset").Hash.ToLowerInvariant()
    if ($got -ne $want) { Fail 14 "the SHA-256 of $asset is $got, but checksums.txt says $want; nothing was installed." }

    $log = Join-Path ([IO.Path]::GetTempPath()) "tentacle-msiexec-$chosen.log"
    $msiArgs = @("/i", "`"$tmp\$asset`"", "/qn", "/norestart", "/l*v", "`"$log`"")
    if ($InstallLocation) { $msiArgs += "INSTALLLOCATION=`"$($InstallLocation.TrimEnd('\'))\`"" }
    $p = Start-Process -FilePath msiexec.exe -ArgumentList $msiArgs -Wait -PassThru
    # 3010: installed; a file in use is replaced at the next restart.
    if ($p.ExitCode -ne 0 -and $p.ExitCode -ne 3010) {
        Fail 16 "msiexec failed with exit code $($p.ExitCode); its log $log says why (search for 'Return value 3')."
    }
    $location = (Get-ItemProperty -Path $RegistryKey -Name InstallLocation).InstallLocation
    $exe = Join-Path $location "Tentacle.exe"
    $now = (& $exe version 2>$null | Select-Object -First 1)
    if ($now -ne $chosen) { Fail 16 "after installing, $exe reports version '$now', not $chosen." }
    Say "tentacle $chosen is installed: $exe"
    Say "next: & '$exe' create-instance ... (see https://github.com/tentacle-go/tentacle#setting-up-an-instance)"
} finally {
    Remove-Item -Recurse -Force -LiteralPath $tmp -ErrorAction SilentlyContinue
}

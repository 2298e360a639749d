#!/usr/bin/env bash
# Regenerates upstream-linux.config: a Tentacle configuration file in the
# format upstream Tentacle writes on Linux, produced with OpenSSL alone (an
# implementation independent of ours) so that our reader is checked against
# the format, not against our own writer:
#   Tentacle.Certificate = base64( AES-256-CBC( key = ASCII of machine-id,
#                                               iv  = "743677397A244326",
#                                               plain = base64(PKCS#12, empty password) ) )
# The PKCS#12 uses TripleDES and a SHA-1 MAC, as .NET's Export(Pfx) does.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
machine_id=$(tr -d '\n' < machine-id)
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 36500 -subj "/CN=Octopus Tentacle" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
openssl pkcs12 -export -inkey "$tmp/key.pem" -in "$tmp/cert.pem" -passout pass: \
  -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1 -out "$tmp/cert.pfx"
thumb=$(openssl x509 -in "$tmp/cert.pem" -outform DER | sha1sum | cut -d' ' -f1 | tr a-f A-F)
key_hex=$(printf %s "$machine_id" | xxd -p -c 256)
iv_hex=$(printf %s 743677397A244326 | xxd -p -c 256)
enc=$(base64 -w0 < "$tmp/cert.pfx" | openssl enc -aes-256-cbc -K "$key_hex" -iv "$iv_hex" -base64 -A)
# A PFX with no private key, for the "no key" error.
openssl pkcs12 -export -nokeys -in "$tmp/cert.pem" -passout pass:secret -certpbe PBE-SHA1-3DES -macalg sha1 -out nokey.pfx
# The same certificate as a password-protected PFX, for import tests.
openssl pkcs12 -export -inkey "$tmp/key.pem" -in "$tmp/cert.pem" -passout pass:Secret123 \
  -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1 -out tentacle.pfx
echo "$thumb" > thumbprint
cat > upstream-linux.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<octopus-settings xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <set key="Octopus.Home">/etc/octopus/Tentacle</set>
  <set key="Octopus.Watchdog.Enabled">false</set>
  <set key="Tentacle.Certificate">$enc</set>
  <set key="Tentacle.CertificateThumbprint">$thumb</set>
  <set key="Tentacle.Communication.LastReceivedHandshake">{"Thumbprint":"9A1F2E3D4C5B6A7988776655443322110FFEEDDC","CommunicationStyle":2,"Address":"https://octopus.example:10943/","Squid":null,"SubscriptionId":"poll://abcdefghjkmnpqrstuvw/"}</set>
  <set key="Tentacle.Communication.TrustedOctopusServers">[{"Thumbprint":"9A1F2E3D4C5B6A7988776655443322110FFEEDDC","CommunicationStyle":2,"Address":"https://octopus.example:10943/","Squid":null,"SubscriptionId":"poll://abcdefghjkmnpqrstuvw/"},{"Thumbprint":"1111111111111111111111111111111111111111","CommunicationStyle":"TentaclePassive","Address":null,"Squid":null,"SubscriptionId":null}]</set>
  <set key="Tentacle.Deployment.ApplicationDirectory">/home/Octopus/Applications</set>
  <set key="Tentacle.Services.IsRegistered" />
  <set key="Tentacle.Services.NoListen">True</set>
  <set key="Tentacle.Services.PortNumber">10933</set>
  <set key="Future.Unknown.Setting">keep &amp; &lt;me&gt; "as is"</set>
</octopus-settings>
XML

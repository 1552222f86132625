using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Configuration;

namespace TradeRoom.Server;

/// <summary>
/// <c>traderoom.tls</c>: the server's certificate, loaded and checked at startup, from PEM certificate and key files or
/// from a PFX file with its password. With a certificate the WebSocket port serves only wss://, and the HTTP port
/// serves HTTPS while <see cref="Http"/> is on.
/// </summary>
public sealed record TlsSettings(X509Certificate2 Certificate, X509Certificate2Collection Chain, bool Http)
{
    /// <summary>The certificate of <c>traderoom.tls</c>, or null when it names none (no TLS). Throws <see cref="StartupException"/> for a bad file or password.</summary>
    public static TlsSettings? FromConfig(Config config)
    {
        var c = config.GetConfig("traderoom.tls") ?? throw new StartupException("the HOCON has no traderoom.tls section");
        var certificatePath = c.GetString("certificate") ?? "";
        var keyPath = c.GetString("key") ?? "";
        var pfxPath = c.GetString("pfx") ?? "";
        var pfxPassword = c.GetString("pfx-password") ?? "";
        var http = c.GetBoolean("http");

        if (pfxPath.Length > 0 && (certificatePath.Length > 0 || keyPath.Length > 0))
            throw new StartupException("traderoom.tls names both a PFX file (pfx, TLS_PFX) and PEM files (certificate/key, TLS_CERT/TLS_KEY); set one of them");
        if (pfxPath.Length == 0 && pfxPassword.Length > 0)
            throw new StartupException("traderoom.tls.pfx-password (TLS_PFX_PASSWORD) is set but traderoom.tls.pfx (TLS_PFX) is not");
        if ((certificatePath.Length > 0) != (keyPath.Length > 0))
            throw new StartupException("traderoom.tls needs both a PEM certificate file (certificate, TLS_CERT) and its key file (key, TLS_KEY)");
        if (pfxPath.Length == 0 && certificatePath.Length == 0)
            return null;

        X509Certificate2 certificate;
        var chain = new X509Certificate2Collection();
        if (pfxPath.Length > 0)
        {
            RequireFile(pfxPath, "pfx", "TLS_PFX");
            try
            {
                var all = X509CertificateLoader.LoadPkcs12CollectionFromFile(pfxPath, pfxPassword);
                certificate = all.FirstOrDefault(x => x.HasPrivateKey)
                    ?? throw new StartupException($"the PFX file {pfxPath} (traderoom.tls.pfx) holds no certificate with a private key");
                chain.AddRange(all.Where(x => !ReferenceEquals(x, certificate)).ToArray());
            }
            catch (CryptographicException e)
            {
                throw new StartupException($"cannot read the PFX file {pfxPath} (traderoom.tls.pfx): wrong password (TLS_PFX_PASSWORD) or not a PKCS#12 file ({e.Message})");
            }
        }
        else
        {
            RequireFile(certificatePath, "certificate", "TLS_CERT");
            RequireFile(keyPath, "key", "TLS_KEY");
            try
            {
                certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
                // Intermediates after the leaf in the certificate file go out with it in the handshake.
                chain.ImportFromPemFile(certificatePath);
                foreach (var leaf in chain.Where(x => x.Thumbprint == certificate.Thumbprint).ToArray())
                    chain.Remove(leaf);
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                throw new StartupException(
                    $"cannot read the PEM certificate {certificatePath} with the key {keyPath} (traderoom.tls.certificate/key): {e.Message}; " +
                    "both must be PEM, the key unencrypted and matching the certificate");
            }
        }
        if (!certificate.HasPrivateKey)
            throw new StartupException("the TLS certificate has no private key");
        return new TlsSettings(certificate, chain, http);
    }

    private static void RequireFile(string path, string key, string variable)
    {
        if (!File.Exists(path))
            throw new StartupException($"traderoom.tls.{key} ({variable}) names {path}, which does not exist");
    }
}

/// <summary>The URL schemes the two ports serve: ws/wss and http/https, as <c>traderoom.tls</c> decides.</summary>
public sealed record ServerSchemes(string WebSocket, string Http)
{
    public static ServerSchemes For(TlsSettings? tls) => new(tls is null ? "ws" : "wss", tls is { Http: true } ? "https" : "http");
}

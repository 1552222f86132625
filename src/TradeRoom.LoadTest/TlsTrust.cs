using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace TradeRoom.LoadTest;

/// <summary>
/// How the load tester checks the server's certificate for wss:// and https://: the system's trust, plus
/// <c>--ca-cert</c> (a PEM certificate trusted as a root: the server's self-signed one, or its CA); or nothing at all with <c>--insecure</c>.
/// </summary>
internal static class TlsTrust
{
    public static RemoteCertificateValidationCallback? Callback(LoadTestOptions options)
    {
        if (options.Insecure)
            return (_, _, _, _) => true;
        if (options.CaCertPath is not { } path)
            return null;
        X509Certificate2 root;
        try
        {
            root = X509Certificate2.CreateFromPem(File.ReadAllText(path));
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException)
        {
            throw new LoadTestException($"--ca-cert {path}: cannot read a PEM certificate ({e.Message})");
        }
        return (_, certificate, _, errors) =>
        {
            if (errors == SslPolicyErrors.None)
                return true;
            // A wrong name or no certificate stays an error; only the chain is judged again, against the given root.
            if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is not X509Certificate2 leaf)
                return false;
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(root);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(leaf);
        };
    }

    public static HttpMessageHandler HttpHandler(LoadTestOptions options) =>
        new SocketsHttpHandler { SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = Callback(options) } };
}

using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace TradeRoom.Tests.Support;

/// <summary>
/// A self-signed server certificate for localhost/127.0.0.1, made at run time and written to a temp folder as PEM
/// certificate + key files and as a PFX with <see cref="PfxPassword"/>. Clients trust it by pinning (<see cref="Validate"/>).
/// </summary>
public sealed class TestCertificate : IDisposable
{
    public const string PfxPassword = "test-pfx-password";

    private TestCertificate(X509Certificate2 certificate, string directory)
    {
        Certificate = certificate;
        Directory = directory;
    }

    public X509Certificate2 Certificate { get; }
    public string Directory { get; }
    public string CertificatePath => Path.Combine(Directory, "server.crt");
    public string KeyPath => Path.Combine(Directory, "server.key");
    public string PfxPath => Path.Combine(Directory, "server.pfx");

    /// <summary>HOCON that makes the server use the PEM files.</summary>
    public string PemHocon => $"traderoom.tls {{ certificate = \"{CertificatePath}\", key = \"{KeyPath}\" }}";

    /// <summary>HOCON that makes the server use the PFX file.</summary>
    public string PfxHocon => $"traderoom.tls {{ pfx = \"{PfxPath}\", pfx-password = \"{PfxPassword}\" }}";

    public static TestCertificate Create()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));

        var directory = System.IO.Directory.CreateTempSubdirectory("traderoom-tls-").FullName;
        var test = new TestCertificate(certificate, directory);
        File.WriteAllText(test.CertificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(test.KeyPath, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllBytes(test.PfxPath, certificate.Export(X509ContentType.Pkcs12, PfxPassword));
        return test;
    }

    /// <summary>Accepts exactly this certificate, whatever the chain says (it is self-signed), and nothing else.</summary>
    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        certificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(Certificate.RawData);

    /// <summary>An HttpClient for <paramref name="baseAddress"/> that trusts this certificate.</summary>
    public HttpClient HttpClient(Uri baseAddress) =>
        new(new SocketsHttpHandler { SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = Validate } })
        {
            BaseAddress = baseAddress,
        };

    public void Dispose()
    {
        Certificate.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

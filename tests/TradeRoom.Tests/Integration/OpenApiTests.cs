using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;
using TradeRoom.Server.Http;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// <c>GET /openapi/v1.json</c> against the real host: a valid OpenAPI 3 document that lists every endpoint the host
/// maps (read from its own <see cref="EndpointDataSource"/>), whose security and body schemas agree with what the
/// endpoints really answer.
/// </summary>
public class OpenApiTests
{
    [Theory]
    [InlineData("Development")]
    [InlineData("Production")]
    public async Task The_document_is_valid_OpenAPI_3_and_lists_every_mapped_endpoint(string environment)
    {
        await using var server = await TestServer.StartAsync(environment: environment);
        var (document, json) = await ReadDocumentAsync(server);

        Assert.StartsWith("3.", json.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        Assert.Contains("ApiErrorBody", document.Components!.Schemas!.Keys);
        var service = Assert.IsType<OpenApiSecurityScheme>(document.Components.SecuritySchemes![ApiDocs.ServiceScheme]);
        Assert.Equal(SecuritySchemeType.Http, service.Type);
        Assert.Equal("bearer", service.Scheme);
        Assert.Equal("JWT", service.BearerFormat);
        Assert.Contains(ApiDocs.MetricsScheme, document.Components.SecuritySchemes.Keys);

        var documented = document.Paths.SelectMany(path => path.Value.Operations!.Keys.Select(method => (Path: path.Key, Method: method.Method)))
            .ToHashSet();
        var missing = new List<string>();
        var excluded = new List<string>();
        foreach (var endpoint in server.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>())
        {
            var path = "/" + endpoint.RoutePattern.RawText!.TrimStart('/');
            if (endpoint.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is { ExcludeFromDescription: true })
            {
                excluded.Add(path);
                continue;
            }
            // An endpoint for any method (prometheus-net's /metrics) must be documented for GET at least.
            var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"];
            foreach (var method in methods)
            {
                if (!documented.Contains((path, method)))
                    missing.Add($"{method} {path}");
            }
        }
        Assert.True(missing.Count == 0, $"mapped but not in /openapi/v1.json: {string.Join(", ", missing)}");
        // What is left out is the catch-all 404 and the documentation itself, nothing of the API.
        Assert.All(excluded, path => Assert.True(
            path == "/{*path}" || path.StartsWith("/openapi/", StringComparison.Ordinal) || path.StartsWith("/api/docs", StringComparison.Ordinal),
            $"{path} is mapped but excluded from the document"));
        // And nothing is documented that is not mapped: every documented operation answers, not with the catch-all 404.
        foreach (var (path, method) in documented)
        {
            var response = await SendAsync(server, method, path, token: null);
            Assert.False(response.Status == HttpStatusCode.NotFound && response.ErrorCode == "not_found", $"{method} {path} is documented but not mapped");
        }

        Assert.Equal(environment == "Development", documented.Contains(("/api/dev/token", "GET")));
        // The interactive page only in Development; the document everywhere.
        var docs = await server.Http.GetAsync("/api/docs/");
        Assert.Equal(environment == "Development" ? HttpStatusCode.OK : HttpStatusCode.NotFound, docs.StatusCode);
    }

    [Fact]
    public async Task Documented_security_is_what_the_endpoints_enforce()
    {
        await using var server = await TestServer.StartAsync("traderoom.http.metrics-token = \"metrics-secret\"", environment: "Development");
        var (document, _) = await ReadDocumentAsync(server);
        var userToken = server.UserToken("u1");
        foreach (var (path, item) in document.Paths)
        {
            foreach (var (method, operation) in item.Operations!)
            {
                var schemes = (operation.Security ?? []).SelectMany(requirement => requirement.Keys).Select(s => s.Reference.Id).ToList();
                var anonymous = await SendAsync(server, method.Method, path, token: null);
                if (schemes.Count == 0)
                {
                    Assert.NotEqual(HttpStatusCode.Unauthorized, anonymous.Status);
                    continue;
                }
                Assert.True(anonymous.Status == HttpStatusCode.Unauthorized, $"{method} {path} without a token: {anonymous}");
                Assert.Equal("unauthorized", anonymous.ErrorCode);
                Assert.Contains("401", operation.Responses!.Keys);
                if (schemes.Contains(ApiDocs.ServiceScheme))
                {
                    // A valid JWT of a trader, not a service: 403, as documented.
                    var trader = await SendAsync(server, method.Method, path, userToken);
                    Assert.True(trader.Status == HttpStatusCode.Forbidden, $"{method} {path} with a user token: {trader}");
                    Assert.Contains("403", operation.Responses.Keys);
                }
            }
        }
    }

    [Fact]
    public async Task Real_answers_match_the_documented_schemas()
    {
        await using var server = await TestServer.StartAsync(environment: "Development");
        var (_, json) = await ReadDocumentAsync(server);
        var schemas = json.GetProperty("components").GetProperty("schemas");
        var service = server.ServiceToken();

        var published = await SendAsync(server, "POST", "/api/rooms/oa-1/events", service,
            """{"type":"order_executed","data":{"userId":"u1","symbol":"AAPL","qty":10}}""");
        AssertMatches(json, schemas, "/api/rooms/{bullPenId}/events", "post", published, HttpStatusCode.Accepted);
        var batch = await SendAsync(server, "POST", "/api/events", service,
            """[{"bullPenId":"oa-1","type":"member_joined","data":{"userId":"u1"}},{"bullPenId":42,"type":"leaderboard_update","data":{"entries":[]}}]""");
        // Data is kept as published, a repeated name included; the room view shows it as it is.
        await SendAsync(server, "POST", "/api/rooms/oa-1/events", service, """{"type":"leaderboard_update","data":{"round":1,"round":2}}""");
        AssertMatches(json, schemas, "/api/events", "post", batch, HttpStatusCode.Accepted);
        var refused = await SendAsync(server, "POST", "/api/events", service, """[{"bullPenId":"oa-1","type":"no_such_type","data":{}}]""");
        AssertMatches(json, schemas, "/api/events", "post", refused, HttpStatusCode.BadRequest);
        Assert.Contains($"`{refused.ErrorCode}`", ResponseDescription(json, "/api/events", "post", 400));

        AssertMatches(json, schemas, "/api/rooms", "get", await SendAsync(server, "GET", "/api/rooms", service), HttpStatusCode.OK);
        AssertMatches(json, schemas, "/api/rooms", "get", await SendAsync(server, "GET", "/api/rooms?limit=0", service), HttpStatusCode.BadRequest);
        var room = await SendAsync(server, "GET", "/api/rooms/oa-1", service);
        AssertMatches(json, schemas, "/api/rooms/{bullPenId}", "get", room, HttpStatusCode.OK);
        Assert.Contains("\"leaderboard\":{\"round\":1,\"round\":2}", room.Text, StringComparison.Ordinal);
        var notFound = await SendAsync(server, "GET", "/api/rooms/never-used", service);
        AssertMatches(json, schemas, "/api/rooms/{bullPenId}", "get", notFound, HttpStatusCode.NotFound);
        Assert.Contains("`room_not_found`", ResponseDescription(json, "/api/rooms/{bullPenId}", "get", 404));
        AssertMatches(json, schemas, "/api/health", "get", await SendAsync(server, "GET", "/api/health", null), HttpStatusCode.OK);
        AssertMatches(json, schemas, "/api/ready", "get", await SendAsync(server, "GET", "/api/ready", null), HttpStatusCode.OK);
        AssertMatches(json, schemas, "/api/dashboard/config", "get", await SendAsync(server, "GET", "/api/dashboard/config", null), HttpStatusCode.OK);
        AssertMatches(json, schemas, "/api/dev/token", "get", await SendAsync(server, "GET", "/api/dev/token?userId=u1", null), HttpStatusCode.OK);
        AssertMatches(json, schemas, "/api/dev/token", "get", await SendAsync(server, "GET", "/api/dev/token", null), HttpStatusCode.BadRequest);
    }

    /// <summary>The document, parsed by Microsoft.OpenApi's reader (errors fail the test) and validated by its default rules.</summary>
    private static async Task<(OpenApiDocument Document, JsonElement Json)> ReadDocumentAsync(TestServer server)
    {
        using var response = await server.Http.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        var read = await OpenApiDocument.LoadAsync(stream, "json");
        Assert.True(read.Diagnostic is not null && read.Diagnostic.Errors.Count == 0,
            "the reader found errors: " + string.Join("; ", read.Diagnostic?.Errors.Select(e => $"{e.Pointer}: {e.Message}") ?? []));
        var document = read.Document!;
        var errors = document.Validate(ValidationRuleSet.GetDefaultRuleSet())?.ToList() ?? [];
        Assert.True(errors.Count == 0, "the document breaks OpenAPI rules: " + string.Join("; ", errors.Select(e => $"{e.Pointer}: {e.Message}")));
        Assert.NotEmpty(document.Paths);
        return (document, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static async Task<ApiResponse> SendAsync(TestServer server, string method, string path, string? token, string? body = null)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path.Replace("{bullPenId}", "oa-probe", StringComparison.Ordinal));
        if (token is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null || method == "POST")
            request.Content = new StringContent(body ?? "{}", Encoding.UTF8, "application/json");
        return await ApiResponse.ReadAsync(server.Http.SendAsync(request));
    }

    private static string ResponseDescription(JsonElement document, string path, string method, int status) =>
        document.GetProperty("paths").GetProperty(path).GetProperty(method).GetProperty("responses")
            .GetProperty(status.ToString(System.Globalization.CultureInfo.InvariantCulture)).GetProperty("description").GetString()!;

    /// <summary>The answer has a documented status, and its body has the documented schema's properties: all the required ones, no others.</summary>
    private static void AssertMatches(JsonElement document, JsonElement schemas, string path, string method, ApiResponse answer, HttpStatusCode expected)
    {
        Assert.True(answer.Status == expected, $"{method} {path}: expected {(int)expected}, got {answer}");
        var responses = document.GetProperty("paths").GetProperty(path).GetProperty(method).GetProperty("responses");
        var status = ((int)answer.Status).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(responses.TryGetProperty(status, out var response), $"{method} {path} answered {status}, which the document does not list");
        var schema = response.GetProperty("content").GetProperty("application/json").GetProperty("schema");
        AssertConforms(schemas, schema, answer.Json, $"{method} {path} {status}");
    }

    private static void AssertConforms(JsonElement schemas, JsonElement schema, JsonElement value, string where)
    {
        if (schema.TryGetProperty("$ref", out var reference))
            schema = schemas.GetProperty(reference.GetString()!.Split('/')[^1]);
        if (schema.TryGetProperty("oneOf", out var choices))
        {
            // Nullable references: { enum: [null] } or the type.
            if (value.ValueKind == JsonValueKind.Null)
                return;
            schema = choices.EnumerateArray().First(c => !c.TryGetProperty("enum", out _));
            AssertConforms(schemas, schema, value, where);
            return;
        }
        if (value.ValueKind == JsonValueKind.Null)
        {
            Assert.True(schema.TryGetProperty("nullable", out var nullable) && nullable.GetBoolean(), $"{where}: null where the schema is not nullable");
            return;
        }
        var type = schema.TryGetProperty("type", out var t) ? t.GetString() : null;
        switch (type)
        {
            case "object":
                Assert.Equal(JsonValueKind.Object, value.ValueKind);
                if (!schema.TryGetProperty("properties", out var properties))
                    return; // free-form (event data)
                var names = value.EnumerateObject().Select(p => p.Name).ToHashSet();
                foreach (var required in schema.TryGetProperty("required", out var r) ? r.EnumerateArray().Select(x => x.GetString()!) : [])
                    Assert.True(names.Contains(required), $"{where}: required property {required} missing in {value}");
                foreach (var property in value.EnumerateObject())
                {
                    Assert.True(properties.TryGetProperty(property.Name, out var propertySchema), $"{where}: property {property.Name} is not documented");
                    AssertConforms(schemas, propertySchema, property.Value, $"{where}.{property.Name}");
                }
                break;
            case "array":
                Assert.Equal(JsonValueKind.Array, value.ValueKind);
                foreach (var item in value.EnumerateArray())
                    AssertConforms(schemas, schema.GetProperty("items"), item, $"{where}[]");
                break;
            case "string":
                Assert.Equal(JsonValueKind.String, value.ValueKind);
                break;
            case "integer":
                Assert.True(value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _), $"{where}: {value} is not an integer");
                break;
            case "boolean":
                Assert.True(value.ValueKind is JsonValueKind.True or JsonValueKind.False, $"{where}: {value} is not a boolean");
                break;
        }
    }
}

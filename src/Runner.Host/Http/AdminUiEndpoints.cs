using System.Collections.Frozen;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Runner.Host.Http;

/// <summary>
/// <c>GET /admin/ui/</c>: the admin page, plain HTML, CSS and JavaScript embedded in the binary.
/// The files themselves are served without the token, so that a person can open the page and type
/// it; every call the page makes for data sends it, and the admin endpoints check it as always.
/// </summary>
internal static class AdminUiEndpoints
{
    private const string ResourcePrefix = "admin-ui/";
    private const string Index = "index.html";

    /// <summary>Nothing but this origin: no script, style, image or connection from anywhere else.</summary>
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    public static void Map(IEndpointRouteBuilder app)
    {
        var files = Load();
        app.MapGet("/admin/ui/{file?}", (string? file, HttpContext context) =>
        {
            var path = context.Request.Path.Value ?? string.Empty;
            if (file is null && !path.EndsWith('/'))
            {
                // The page's links and calls are relative to /admin/ui/, so that a proxy may serve it under a prefix.
                return Results.Redirect("ui/");
            }
            if (!files.TryGetValue(file ?? Index, out var asset))
            {
                return Results.NotFound();
            }
            var headers = context.Response.Headers;
            headers.CacheControl = "no-cache";
            headers.XContentTypeOptions = "nosniff";
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            headers["Referrer-Policy"] = "no-referrer";
            return Results.Bytes(asset.Content, asset.ContentType);
        });
    }

    private static FrozenDictionary<string, (byte[] Content, string ContentType)> Load()
    {
        var assembly = typeof(AdminUiEndpoints).Assembly;
        var files = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            var file = name[ResourcePrefix.Length..];
            files[file] = (memory.ToArray(), Path.GetExtension(file) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                _ => "application/octet-stream",
            });
        }
        if (!files.ContainsKey(Index))
        {
            throw new InvalidOperationException("the admin page is missing from the binary (embedded resource admin-ui/index.html)");
        }
        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }
}

using Runner.Host.Settings;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner health [--ready]</c>: asks the running service's <c>/health</c> (or <c>/ready</c>) on
/// the first of <c>RUNNER_HTTP_URLS</c> and exits 0 on 200, 1 otherwise. The container health
/// check, since the runtime image has no curl.
/// </summary>
internal static class HealthCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var path = args.Contains("--ready") ? "ready" : "health";
        var url = new Uri(Local(settings.HttpUrls[0]), path);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var response = await http.GetAsync(url, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            Console.WriteLine($"{(int)response.StatusCode} {body}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"runner: {url}: {ex.Message}");
            return 1;
        }
    }

    /// <summary>A listen address as a client reaches it from inside the container: any-address becomes loopback.</summary>
    private static Uri Local(string listen)
    {
        var builder = new UriBuilder(listen);
        if (builder.Host is "0.0.0.0" or "[::]" or "::" or "*" or "+")
        {
            builder.Host = "127.0.0.1";
        }
        builder.Path = "/";
        return builder.Uri;
    }
}

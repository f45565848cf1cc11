using YamlDotNet.RepresentationModel;

namespace Runner.Core.Manifests;

internal static partial class ManifestParser
{
    private static readonly HashSet<string> s_effectFields =
        ["kind", "name", "description", "provider", "pool", "http", "gateway", "publish", "slice", "retry", "timeout_ms", "give_up_after_ms", "circuit_breaker", "concurrency", "isolation", "defaults", "maximums"];
    // A week: commands stored longer ago are quarantined as stale anyway (the claim retention).
    private const int MaxGiveUpAfterMs = 604_800_000;

    private static readonly HashSet<string> s_httpFields = ["url", "method", "headers"];
    private static readonly HashSet<string> s_gatewayFields = ["url", "command", "headers"];
    private static readonly HashSet<string> s_publishFields = ["subject", "type"];
    private static readonly string[] s_providers = [EffectManifest.HttpProvider, EffectManifest.GatewayProvider, EffectManifest.PublishProvider, EffectManifest.SliceProvider];
    private static readonly string[] s_methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];

    /// <summary>Blocks that configure one provider; on any other provider they are an error.</summary>
    private static readonly (string Block, string Provider)[] s_providerBlocks =
    [
        ("http", EffectManifest.HttpProvider),
        ("gateway", EffectManifest.GatewayProvider),
        ("publish", EffectManifest.PublishProvider),
        ("slice", EffectManifest.SliceProvider),
        ("isolation", EffectManifest.SliceProvider),
        ("defaults", EffectManifest.SliceProvider),
        ("maximums", EffectManifest.SliceProvider),
    ];

    private static void ParseEffect(YamlMappingNode root, string file, Func<string, string?> environment, Result result)
    {
        var errors = result.Errors;
        UnknownFields(root, s_effectFields, file, "effect", errors);
        var name = RequiredName(root, file, errors);
        var written = Scalar(root, "provider");
        string? provider = null;
        if (string.IsNullOrWhiteSpace(written))
        {
            errors.Add(Error(file, root, "effect: missing 'provider'"));
            written = null;
        }
        else if (!s_providers.Contains(written))
        {
            errors.Add(Error(file, Child(root, "provider")!, $"effect: unknown provider '{written}' (expected http, gateway, publish or slice)"));
        }
        else
        {
            provider = written;
        }
        var pool = Scalar(root, "pool");
        if (pool is not null && Subjects.SubjectPattern.Validate(pool, allowWildcards: false) is { } poolError)
        {
            errors.Add(Error(file, Child(root, "pool")!, $"effect: pool: {poolError}"));
        }

        if (provider is not null)
        {
            foreach (var (block, owner) in s_providerBlocks)
            {
                if (owner != provider && Key(root, block) is { } key)
                {
                    errors.Add(Error(file, key, $"effect: '{block}' is only for provider {owner}, not {provider}"));
                }
            }
            if (Child(root, provider) is null && provider != EffectManifest.SliceProvider)
            {
                errors.Add(Error(file, root, $"effect: provider {provider} needs a '{provider}' block with at least a '{(provider == EffectManifest.PublishProvider ? "subject" : "url")}'"));
            }
        }

        HttpEffectConfig? http = null;
        GatewayEffectConfig? gateway = null;
        if (provider == EffectManifest.HttpProvider && Child(root, "http") is { } httpNode)
        {
            http = ParseHttp(httpNode, file, environment, errors);
        }
        if (provider == EffectManifest.GatewayProvider && Child(root, "gateway") is { } gatewayNode)
        {
            gateway = ParseGateway(gatewayNode, file, environment, errors);
        }
        PublishEffectConfig? publish = null;
        if (provider == EffectManifest.PublishProvider && Child(root, "publish") is { } publishNode)
        {
            publish = ParsePublish(publishNode, file, errors);
        }
        SliceEffectConfig? slice = null;
        if (provider == EffectManifest.SliceProvider)
        {
            slice = ParseSlice(root, file, environment, errors);
        }
        // A slice runs once unless told otherwise, and its own timeout_ms (from the command) governs:
        // the effect's timeout is only a backstop past the longest a slice may run.
        var retry = provider == EffectManifest.SliceProvider && Child(root, "retry") is null
            ? RetryPolicy.Default with { MaxAttempts = 1 }
            : ParseRetry(Child(root, "retry"), file, errors);
        var defaultTimeout = slice is null ? 10_000 : SliceBackstopMs(slice);
        var timeoutMs = ReadInt(root, "timeout_ms", defaultTimeout, 10, 3_600_000, "effect: ", file, errors);
        var concurrency = ReadInt(root, "concurrency", EffectManifest.DefaultConcurrency, 1, 1024, "effect: ", file, errors);
        var breaker = ParseCircuitBreaker(Child(root, "circuit_breaker"), file, errors);
        var giveUpAfterMs = Child(root, "give_up_after_ms") is null
            ? null
            : ReadInt(root, "give_up_after_ms", 0, 1, MaxGiveUpAfterMs, "effect: ", file, errors);

        // Declared even when broken (as a saga with a bad trigger is), so that the sagas commanding
        // it are not also reported for an undeclared effect: the errors above fail the load anyway.
        if (name is not null && written is not null)
        {
            result.Effects.Add(new EffectManifest(name, written, pool, file, Line(root))
            {
                Http = http,
                Gateway = gateway,
                Publish = publish,
                Retry = retry,
                Slice = slice,
                TimeoutMs = timeoutMs ?? defaultTimeout,
                CircuitBreaker = breaker,
                GiveUpAfterMs = giveUpAfterMs,
                Concurrency = concurrency ?? EffectManifest.DefaultConcurrency,
            });
        }
    }

    private static HttpEffectConfig? ParseHttp(YamlNode node, string file, Func<string, string?> environment, List<ManifestError> errors)
    {
        if (node is not YamlMappingNode map)
        {
            errors.Add(Error(file, node, "'http' must be a mapping with at least a 'url'"));
            return null;
        }
        UnknownFields(map, s_httpFields, file, "http", errors);
        var url = ParseUrl(map, "http", file, environment, errors);
        var method = "POST";
        if (Child(map, "method") is { } methodNode)
        {
            var text = (methodNode as YamlScalarNode)?.Value?.ToUpperInvariant();
            if (text is not null && s_methods.Contains(text))
            {
                method = text;
            }
            else
            {
                errors.Add(Error(file, methodNode, $"http.method must be one of {string.Join(", ", s_methods)}"));
            }
        }
        var headers = ParseHeaders(Child(map, "headers"), "http", file, errors);
        return url is null ? null : new HttpEffectConfig(url, method, headers);
    }

    private static PublishEffectConfig? ParsePublish(YamlNode node, string file, List<ManifestError> errors)
    {
        if (node is not YamlMappingNode map)
        {
            errors.Add(Error(file, node, "'publish' must be a mapping with at least a 'subject'"));
            return null;
        }
        UnknownFields(map, s_publishFields, file, "publish", errors);
        var subject = Scalar(map, "subject");
        if (string.IsNullOrWhiteSpace(subject))
        {
            errors.Add(Error(file, map, "publish: missing 'subject'"));
            return null;
        }
        foreach (var problem in SubjectTemplate.Validate(subject))
        {
            errors.Add(Error(file, Child(map, "subject")!, $"publish.subject: {problem}"));
        }
        var type = Scalar(map, "type");
        if (type is not null)
        {
            foreach (var problem in SubjectTemplate.ValidatePlaceholders(type))
            {
                errors.Add(Error(file, Child(map, "type")!, $"publish.type: {problem}"));
            }
        }
        return new PublishEffectConfig(subject, type);
    }

    private static GatewayEffectConfig? ParseGateway(YamlNode node, string file, Func<string, string?> environment, List<ManifestError> errors)
    {
        if (node is not YamlMappingNode map)
        {
            errors.Add(Error(file, node, "'gateway' must be a mapping with at least a 'url'"));
            return null;
        }
        UnknownFields(map, s_gatewayFields, file, "gateway", errors);
        var url = ParseUrl(map, "gateway", file, environment, errors);
        string? command = null;
        if (Child(map, "command") is { } commandNode)
        {
            command = (commandNode as YamlScalarNode)?.Value;
            if (string.IsNullOrWhiteSpace(command))
            {
                errors.Add(Error(file, commandNode, "gateway.command must be a non-empty string"));
                command = null;
            }
        }
        var headers = ParseHeaders(Child(map, "headers"), "gateway", file, errors);
        return url is null ? null : new GatewayEffectConfig(url, command, headers);
    }

    private static string? ParseUrl(YamlMappingNode map, string block, string file, Func<string, string?> environment, List<ManifestError> errors)
    {
        var node = Child(map, "url");
        var text = (node as YamlScalarNode)?.Value;
        if (node is null || string.IsNullOrWhiteSpace(text))
        {
            errors.Add(Error(file, node ?? map, $"{block}: missing 'url'"));
            return null;
        }
        var problems = new List<string>();
        var url = UrlTemplate.ExpandEnvironment(text, environment, problems);
        if (url is not null)
        {
            UrlTemplate.Validate(url, problems);
        }
        foreach (var problem in problems)
        {
            errors.Add(Error(file, node, $"{block}.url: {problem}"));
        }
        return problems.Count == 0 ? url : null;
    }

    private static YamlNode? Key(YamlMappingNode map, string key) =>
        map.Children.Keys.FirstOrDefault(k => k is YamlScalarNode { Value: var name } && name == key);
}

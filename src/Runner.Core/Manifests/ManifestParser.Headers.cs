using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Runner.Core.Manifests;

internal static partial class ManifestParser
{
    private static readonly HashSet<string> s_secretFields = ["secret"];

    private static Dictionary<string, HeaderValue> ParseHeaders(YamlNode? node, string block, string file, List<ManifestError> errors)
    {
        var headers = new Dictionary<string, HeaderValue>(StringComparer.OrdinalIgnoreCase);
        if (node is null)
        {
            return headers;
        }
        if (node is not YamlMappingNode map)
        {
            errors.Add(Error(file, node, $"{block}.headers must be a mapping of header name to a string or {{ secret: NAME }}"));
            return headers;
        }
        foreach (var (keyNode, valueNode) in map.Children)
        {
            var name = (keyNode as YamlScalarNode)?.Value ?? string.Empty;
            var where = $"{block}.headers.{name}";
            if (!HeaderToken().IsMatch(name))
            {
                errors.Add(Error(file, keyNode, $"{block}.headers: '{name}' is not a valid HTTP header name"));
                continue;
            }
            if (headers.ContainsKey(name))
            {
                errors.Add(Error(file, keyNode, $"{block}.headers: '{name}' is given twice (header names are case-insensitive)"));
                continue;
            }
            if (ParseHeaderValue(valueNode, where, file, errors) is { } value)
            {
                headers.Add(name, value);
            }
        }
        return headers;
    }

    private static HeaderValue? ParseHeaderValue(YamlNode node, string where, string file, List<ManifestError> errors)
    {
        switch (node)
        {
            case YamlScalarNode { Value: var text }:
                if (text is not null && text.Any(c => char.IsControl(c) && c != '\t'))
                {
                    errors.Add(Error(file, node, $"{where}: a header value must not contain control characters (line breaks, NUL...)"));
                    return null;
                }
                return HeaderValue.Literal(text ?? string.Empty);
            case YamlMappingNode map:
                UnknownFields(map, s_secretFields, file, where, errors);
                var secretNode = Child(map, "secret");
                var secret = (secretNode as YamlScalarNode)?.Value;
                if (secretNode is null)
                {
                    errors.Add(Error(file, map, $"{where}: missing 'secret'"));
                    return null;
                }
                if (secret is null || !IsSecretName(secret))
                {
                    errors.Add(Error(file, secretNode, $"{where}: secret name '{secret}' must be 1 to 128 letters, digits, '.', '_' or '-', and not '.' or '..'"));
                    return null;
                }
                return HeaderValue.FromSecret(secret);
            default:
                errors.Add(Error(file, node, $"{where}: a header value must be a string or {{ secret: NAME }}"));
                return null;
        }
    }

    // RFC 9110 token: the characters an HTTP field name may have.
    [GeneratedRegex(@"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\z")]
    private static partial Regex HeaderToken();

    [GeneratedRegex(@"^[A-Za-z0-9._-]{1,128}\z")]
    private static partial Regex SecretName();

    /// <summary>A secret is a plain file name in the secrets directory (headers and slices alike).</summary>
    private static bool IsSecretName(string name) => name is not "." and not ".." && SecretName().IsMatch(name);
}

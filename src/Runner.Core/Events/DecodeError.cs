namespace Runner.Core.Events;

/// <summary>Why a message could not become an event. The code is stable; the message is for people.</summary>
internal sealed record DecodeError(string Code, string Message)
{
    public const string InvalidUtf8 = "invalid_utf8";
    public const string NotJson = "not_json";
    public const string NotCloudEvent = "not_cloudevent";
    public const string MissingAttribute = "missing_attribute";
    public const string InvalidAttribute = "invalid_attribute";
    public const string UnsupportedSpecVersion = "unsupported_specversion";
    public const string NoTenant = "no_tenant";
    public const string TenantMismatch = "tenant_mismatch";
    public const string PayloadTooLarge = "payload_too_large";
}

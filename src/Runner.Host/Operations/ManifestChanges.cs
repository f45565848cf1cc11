using System.Text.Json;
using Runner.Core.Manifests;
using Runner.Sagas.Manifests;

namespace Runner.Host.Operations;

/// <summary>
/// What a reload changes between two manifest versions, and which of those changes take effect
/// at once and which wait for a restart.
/// </summary>
internal sealed record ManifestChanges(
    IReadOnlyList<string> SagasAdded,
    IReadOnlyList<string> SagasRemoved,
    IReadOnlyList<string> SagasChanged,
    IReadOnlyList<string> EffectsAdded,
    IReadOnlyList<string> EffectsRemoved,
    IReadOnlyList<string> EffectsChanged,
    IReadOnlyList<string> RestartRequired)
{
    public static ManifestChanges Between(ManifestSet before, ManifestSet after)
    {
        var (sagasAdded, sagasRemoved, sagasChanged) = Compare(
            before.Sagas.ToDictionary(s => s.Name, Fingerprint, StringComparer.Ordinal),
            after.Sagas.ToDictionary(s => s.Name, Fingerprint, StringComparer.Ordinal));
        var (effectsAdded, effectsRemoved, effectsChanged) = Compare(
            before.Effects.ToDictionary(e => e.Name, Fingerprint, StringComparer.Ordinal),
            after.Effects.ToDictionary(e => e.Name, Fingerprint, StringComparer.Ordinal));

        var restart = new List<string>();
        foreach (var stream in before.TriggerStreams.Except(after.TriggerStreams, StringComparer.Ordinal))
        {
            restart.Add($"router for {stream} keeps running (and routes nothing) until restart");
        }
        foreach (var effect in effectsRemoved)
        {
            restart.Add($"workers of removed effect '{effect}' keep consuming until restart; its commands fail as unknown_effect");
        }
        foreach (var name in effectsChanged)
        {
            var (old, now) = (before.Effect(name)!, after.Effect(name)!);
            if (old.Pool != now.Pool || old.Concurrency != now.Concurrency)
            {
                restart.Add($"effect '{name}': pool and concurrency changes apply to its workers after restart");
            }
        }
        return new ManifestChanges(sagasAdded, sagasRemoved, sagasChanged, effectsAdded, effectsRemoved, effectsChanged, restart);
    }

    private static (List<string> Added, List<string> Removed, List<string> Changed) Compare(
        Dictionary<string, string> before, Dictionary<string, string> after) =>
        (after.Keys.Except(before.Keys).Order(StringComparer.Ordinal).ToList(),
         before.Keys.Except(after.Keys).Order(StringComparer.Ordinal).ToList(),
         after.Keys.Where(k => before.TryGetValue(k, out var old) && old != after[k]).Order(StringComparer.Ordinal).ToList());

    private static string Fingerprint(LoadedSaga saga) =>
        saga.Script.Hash + "|" + saga.Manifest.Limits + "|"
        + string.Join(";", saga.Manifest.Triggers.Select(t => $"{t.Stream} {t.Subject} {t.Correlation.Text}"));

    // Where a declaration sits in its file is not a change.
    private static string Fingerprint(EffectManifest effect) =>
        JsonSerializer.Serialize(effect with { File = string.Empty, Line = 0 }, ManifestFingerprintJsonContext.Default.EffectManifest);
}

/// <summary>An effect declaration written whole, to tell whether a reload changed it.</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(EffectManifest))]
internal sealed partial class ManifestFingerprintJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

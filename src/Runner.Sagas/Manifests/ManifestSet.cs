using Runner.Core.Manifests;
using Runner.Scripting;

namespace Runner.Sagas.Manifests;

/// <summary>One manifest or script file of a version, by its path relative to the manifest directory.</summary>
internal sealed record ManifestSource(string Path, string Text);

/// <summary>A saga ready to run: its declaration and its compiled script.</summary>
internal sealed record LoadedSaga(SagaManifest Manifest, SagaScript Script)
{
    public string Name => Manifest.Name;
}

/// <summary>
/// One validated, immutable version of all manifests and scripts. A reload builds a new set and
/// swaps it in whole; a set that fails validation is never used.
/// </summary>
internal sealed class ManifestSet
{
    private readonly Dictionary<string, LoadedSaga> _sagas;
    private readonly Dictionary<string, string> _effectPools;
    private readonly Dictionary<string, EffectManifest> _effects;

    /// <param name="workflowEvents">
    /// The WORKFLOW_EVENTS stream: routed whenever a saga is loaded, because timers and effect
    /// results go back to the saga that caused them without a declared trigger.
    /// </param>
    public ManifestSet(IReadOnlyList<LoadedSaga> sagas, IReadOnlyList<EffectManifest> effects, string hash, string workflowEvents)
    {
        Sagas = sagas;
        Effects = effects;
        Hash = hash;
        _sagas = sagas.ToDictionary(s => s.Name, StringComparer.Ordinal);
        _effects = effects.ToDictionary(e => e.Name, StringComparer.Ordinal);
        _effectPools = effects.Where(e => e.Pool is not null).ToDictionary(e => e.Name, e => e.Pool!, StringComparer.Ordinal);
        WorkflowEvents = workflowEvents;
        TriggerStreams = sagas.SelectMany(s => s.Manifest.Triggers).Select(t => t.Stream)
            .Concat(sagas.Count > 0 ? [workflowEvents] : [])
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
    }

    public IReadOnlyList<LoadedSaga> Sagas { get; }

    /// <summary>The files the version is made of, in hash order (relative path and text): what is stored to replay it elsewhere.</summary>
    public IReadOnlyList<ManifestSource> Sources { get; init; } = [];

    public IReadOnlyList<EffectManifest> Effects { get; }

    /// <summary>SHA-256 over every manifest and script, in path order: the manifest version.</summary>
    public string Hash { get; }

    /// <summary>Streams that get a router: every declared trigger stream, and WORKFLOW_EVENTS when any saga is loaded.</summary>
    public IReadOnlyList<string> TriggerStreams { get; }

    /// <summary>Where timers and effect results arrive (routed implicitly, see <see cref="Routing.ImplicitRoutes"/>).</summary>
    public string WorkflowEvents { get; }

    public LoadedSaga? Saga(string name) => _sagas.GetValueOrDefault(name);

    public EffectManifest? Effect(string name) => _effects.GetValueOrDefault(name);

    /// <summary>The pool an effect's manifest declares, used when a command names none.</summary>
    public string? DefaultPool(string effect) => _effectPools.GetValueOrDefault(effect);

    /// <summary>For each saga, the first of its triggers that matches the stream and subject; null when none does.</summary>
    public List<(LoadedSaga Saga, SagaTrigger Trigger)>? Match(string stream, string subject)
    {
        List<(LoadedSaga Saga, SagaTrigger Trigger)>? matches = null;
        Match(stream, subject, ref matches);
        return matches;
    }

    /// <summary>
    /// <see cref="Match(string, string)"/> into <paramref name="matches"/>: emptied first, made only when
    /// something matches, kept by a caller that matches one message at a time.
    /// </summary>
    public void Match(string stream, string subject, ref List<(LoadedSaga Saga, SagaTrigger Trigger)>? matches)
    {
        matches?.Clear();
        for (var s = 0; s < Sagas.Count; s++)
        {
            var saga = Sagas[s];
            var triggers = saga.Manifest.Triggers;
            for (var t = 0; t < triggers.Count; t++)
            {
                var trigger = triggers[t];
                if (string.Equals(trigger.Stream, stream, StringComparison.Ordinal) && trigger.Subject.Matches(subject))
                {
                    (matches ??= new List<(LoadedSaga, SagaTrigger)>(1)).Add((saga, trigger));
                    break;
                }
            }
        }
    }
}

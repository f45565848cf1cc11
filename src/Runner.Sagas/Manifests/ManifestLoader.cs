using System.Security.Cryptography;
using System.Text;
using Runner.Core.Manifests;
using Runner.Messaging;
using Runner.Scripting;

namespace Runner.Sagas.Manifests;

/// <summary>
/// Reads every <c>*.yaml</c>/<c>*.yml</c> under a directory, parses, compiles scripts and checks
/// references. Returns every error found, each with its file and line, or a complete set.
/// <c>${NAME}</c> references in effect URLs are read from <c>environment</c>, the process
/// environment unless a caller passes its own.
/// </summary>
internal static class ManifestLoader
{
    public sealed record Result(ManifestSet? Set, IReadOnlyList<ManifestError> Errors)
    {
        public bool Succeeded => Set is not null && Errors.Count == 0;
    }

    public static Result Load(string directory, StreamNames streams, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var errors = new List<ManifestError>();
        if (!Directory.Exists(directory))
        {
            errors.Add(new ManifestError(directory, 0, 0, "manifest directory does not exist"));
            return new Result(null, errors);
        }

        var files = Directory.EnumerateFiles(directory, "*.*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
        {
            errors.Add(new ManifestError(directory, 0, 0, "no manifest files (*.yaml, *.yml) found"));
            return new Result(null, errors);
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var sources = new List<ManifestSource>();
        var sagaManifests = new List<SagaManifest>();
        var effects = new List<EffectManifest>();
        foreach (var file in files)
        {
            var relative = Path.GetRelativePath(directory, file);
            var text = File.ReadAllText(file);
            hash.AppendData(Encoding.UTF8.GetBytes(relative + "\n" + text + "\n"));
            sources.Add(new ManifestSource(relative, text));
            var parsed = ManifestParser.Parse(text, file, environment);
            errors.AddRange(parsed.Errors);
            sagaManifests.AddRange(parsed.Sagas);
            effects.AddRange(parsed.Effects);
        }

        Duplicates(sagaManifests.Select(s => (s.Name, s.File, s.Line)), "saga", errors);
        Duplicates(effects.Select(e => (e.Name, e.File, e.Line)), "effect", errors);

        var allowedStreams = new HashSet<string>(StringComparer.Ordinal) { streams.AggregateEvents, streams.PipelineEvents, streams.WorkflowEvents };
        var declaredEffects = effects.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var sagas = new List<LoadedSaga>();
        foreach (var manifest in sagaManifests)
        {
            foreach (var trigger in manifest.Triggers.Where(t => !allowedStreams.Contains(t.Stream)))
            {
                errors.Add(new ManifestError(manifest.File, trigger.Line, 1,
                    $"trigger stream '{trigger.Stream}' is not a trigger stream (expected one of {string.Join(", ", allowedStreams.Order(StringComparer.Ordinal))})"));
            }
            var scriptPath = manifest.ScriptPath;
            if (!File.Exists(scriptPath))
            {
                errors.Add(new ManifestError(manifest.File, manifest.Line, 1, $"saga '{manifest.Name}': script '{manifest.Script}' not found at {scriptPath}"));
                continue;
            }
            var source = File.ReadAllText(scriptPath);
            var scriptRelative = Path.GetRelativePath(directory, scriptPath);
            hash.AppendData(Encoding.UTF8.GetBytes(scriptRelative + "\n" + source + "\n"));
            sources.Add(new ManifestSource(scriptRelative, source));
            if (SagaScript.TryCompile(manifest.Name, scriptPath, source, manifest.Limits, out var script, out var scriptErrors))
            {
                sagas.Add(new LoadedSaga(manifest, script!));
                foreach (var reference in script!.Effects.Where(r => !declaredEffects.Contains(r.Effect)))
                {
                    errors.Add(new ManifestError(scriptPath, reference.Line, reference.Column,
                        $"saga '{manifest.Name}': script commands effect '{reference.Effect}' which no effect manifest declares"));
                }
            }
            else
            {
                errors.AddRange(scriptErrors);
            }
        }

        if (errors.Count > 0)
        {
            return new Result(null, errors);
        }
        var set = new ManifestSet(sagas, effects, Convert.ToHexStringLower(hash.GetHashAndReset()), streams.WorkflowEvents) { Sources = sources };
        return new Result(set, errors);
    }

    private static void Duplicates(IEnumerable<(string Name, string File, int Line)> items, string what, List<ManifestError> errors)
    {
        foreach (var group in items.GroupBy(i => i.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            var first = group.First();
            foreach (var duplicate in group.Skip(1))
            {
                errors.Add(new ManifestError(duplicate.File, duplicate.Line, 1, $"duplicate {what} name '{duplicate.Name}' (first declared in {first.File}:{first.Line})"));
            }
        }
    }
}

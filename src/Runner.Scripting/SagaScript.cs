using System.Security.Cryptography;
using System.Text;
using Acornima;
using Acornima.Ast;
using Jint;
using Runner.Core.Manifests;

namespace Runner.Scripting;

/// <summary>
/// A saga script compiled once (parsed and prepared by Jint) and checked against the script
/// contract: it defines <c>on_event</c>, and its top level declares only functions and
/// <c>const</c>s, so nothing at module level can carry data from one event to the next.
/// </summary>
internal sealed class SagaScript
{
    private SagaScript(string saga, string file, Prepared<Script> prepared, ScriptLimits limits, string hash, bool hasCompensate)
    {
        Saga = saga;
        File = file;
        Prepared = prepared;
        Limits = limits;
        Hash = hash;
        HasCompensate = hasCompensate;
        Pool = new SandboxPool(this);
    }

    public string Saga { get; }

    public string File { get; }

    public Prepared<Script> Prepared { get; }

    public ScriptLimits Limits { get; }

    /// <summary>SHA-256 of the source: recorded with transitions so a state can be traced to its code.</summary>
    public string Hash { get; }

    public bool HasCompensate { get; }

    internal SandboxPool Pool { get; }

    public static bool TryCompile(string saga, string file, string source, ScriptLimits limits, out SagaScript? script, out List<ManifestError> errors)
    {
        script = null;
        errors = [];
        Prepared<Script> prepared;
        try
        {
            prepared = Engine.PrepareScript(source, file, strict: true);
        }
        catch (ScriptPreparationException ex)
        {
            var parse = ex.InnerException as ParseErrorException;
            errors.Add(new ManifestError(file, parse?.LineNumber ?? 0, parse?.Column ?? 0, $"script does not compile: {parse?.Description ?? ex.Message}"));
            return false;
        }

        var hasOnEvent = false;
        var hasCompensate = false;
        foreach (var statement in prepared.Program!.Body)
        {
            var line = statement.Location.Start.Line;
            var column = statement.Location.Start.Column + 1;
            switch (statement)
            {
                case FunctionDeclaration function:
                    if (function.Generator || function.Async)
                    {
                        errors.Add(new ManifestError(file, line, column, $"function '{function.Id?.Name}' must not be async or a generator: transitions are synchronous"));
                    }
                    hasOnEvent |= function.Id?.Name == "on_event";
                    hasCompensate |= function.Id?.Name == "compensate";
                    break;
                case VariableDeclaration { Kind: VariableDeclarationKind.Const } constant:
                    foreach (var declarator in constant.Declarations)
                    {
                        if (declarator.Init is { } init && FindStatefulInitializer(init) is { } found)
                        {
                            errors.Add(new ManifestError(file, found.Location.Start.Line, found.Location.Start.Column + 1,
                                $"top-level const initializers may not call functions or construct objects ({found.TypeText}): the result could keep state between events; build it inside on_event, or use literals (Object.freeze is allowed)"));
                        }
                    }
                    break;
                case Directive:
                case EmptyStatement:
                    break;
                case VariableDeclaration declaration:
                    errors.Add(new ManifestError(file, line, column,
                        $"top-level '{declaration.Kind.ToString().ToLowerInvariant()}' would carry data between events; use const, or keep it in state"));
                    break;
                default:
                    errors.Add(new ManifestError(file, line, column,
                        $"top-level {statement.TypeText} is not allowed: a saga script declares functions and consts only"));
                    break;
            }
        }
        if (!hasOnEvent)
        {
            errors.Add(new ManifestError(file, 1, 1, "script does not define function on_event(state, event, ctx)"));
        }
        if (errors.Count > 0)
        {
            return false;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(source)));
        var candidate = new SagaScript(saga, file, prepared, limits, hash, hasCompensate);

        // Load it once in a real sandbox: module-level code runs here, and anything mutable it
        // leaves reachable (a Map, a Date...) is reported now rather than at the first event.
        try
        {
            candidate.Pool.Return(new ScriptSandbox(candidate));
        }
        catch (Exception ex) when (ex is JintException or SandboxLimitException or InvalidOperationException or System.Text.RegularExpressions.RegexMatchTimeoutException or ArgumentException or InsufficientExecutionStackException)
        {
            errors.Add(new ManifestError(file, 0, 0, $"script fails to load: {ex.Message}"));
            return false;
        }
        script = candidate;
        return true;
    }

    /// <summary>
    /// A call, <c>new</c> or tagged template evaluated at load time could return something with
    /// hidden mutable state (a closure counter, an iterator, a generator) that freezing cannot
    /// reach; functions defined here run later, per event, so their bodies are not searched.
    /// </summary>
    private static Node? FindStatefulInitializer(Node node)
    {
        switch (node)
        {
            case FunctionExpression or ArrowFunctionExpression:
                return null;
            case CallExpression { Callee: MemberExpression { Object: Identifier { Name: "Object" }, Property: Identifier { Name: "freeze" }, Computed: false } } freeze:
                foreach (var argument in freeze.Arguments)
                {
                    if (FindStatefulInitializer(argument) is { } inner)
                    {
                        return inner;
                    }
                }
                return null;
            case CallExpression or NewExpression or TaggedTemplateExpression:
                return node;
        }
        foreach (var child in node.ChildNodes)
        {
            if (FindStatefulInitializer(child) is { } found)
            {
                return found;
            }
        }
        return null;
    }

    /// <summary>Runs one transition in a pooled sandbox.</summary>
    public ScriptResult Run(ScriptInput input) => Pool.Run(input);
}

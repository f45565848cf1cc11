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
    private SagaScript(string saga, string file, Prepared<Script> prepared, ScriptLimits limits, string hash, bool hasCompensate, IReadOnlyList<EffectReference> effects)
    {
        Saga = saga;
        File = file;
        Prepared = prepared;
        Limits = limits;
        Hash = hash;
        HasCompensate = hasCompensate;
        Effects = effects;
        Pool = new SandboxPool(this);
    }

    public string Saga { get; }

    public string File { get; }

    public Prepared<Script> Prepared { get; }

    public ScriptLimits Limits { get; }

    /// <summary>SHA-256 of the source: recorded with transitions so a state can be traced to its code.</summary>
    public string Hash { get; }

    public bool HasCompensate { get; }

    /// <summary>The effects the script commands by literal name, with their lines: checked against the effect manifests at load.</summary>
    public IReadOnlyList<EffectReference> Effects { get; }

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
                                $"top-level const initializers may not call functions or construct objects ({found.TypeText}): only literals, functions and Object.freeze of literals are allowed, so nothing can keep state between events; build it inside on_event"));
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
        var candidate = new SagaScript(saga, file, prepared, limits, hash, hasCompensate, EffectReference.FindAll(prepared.Program!));

        // Load it once in a real sandbox: module-level code runs here, and anything mutable it
        // leaves reachable (a Map, a Date...) is reported now rather than at the first event.
        try
        {
            candidate.Pool.Return(ScriptThreads.Run(() => new ScriptSandbox(candidate)));
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
    /// Top-level const initializers must have the shape of a literal, so that nothing runs at load
    /// time that could keep hidden state (a closure counter, an iterator, a getter's result) beyond
    /// the reach of freezing: literals, array and object literals of allowed values (no spread, no
    /// getters or setters), functions (their bodies run later, per event), arithmetic on literals,
    /// references to other top-level names, and <c>Object.freeze</c> of an allowed value.
    /// Returns the first node that is not allowed.
    /// </summary>
    private static Node? FindStatefulInitializer(Node node)
    {
        switch (node)
        {
            case Literal or FunctionExpression or ArrowFunctionExpression or Identifier:
                return null;
            case TemplateLiteral template:
                return template.Expressions.Count == 0 ? null : node;
            case ArrayExpression array:
                foreach (var element in array.Elements)
                {
                    if (element is not null && FindStatefulInitializer(element) is { } inner)
                    {
                        return inner;
                    }
                }
                return null;
            case ObjectExpression obj:
                foreach (var member in obj.Properties)
                {
                    if (member is not Property { Kind: PropertyKind.Init } property
                        || (property.Computed && property.Key is not Literal)
                        || FindStatefulInitializer(property.Value) is not null)
                    {
                        return member;
                    }
                }
                return null;
            case UnaryExpression { Operator: Operator.UnaryNegation or Operator.UnaryPlus or Operator.LogicalNot } unary:
                return unary.Argument is Literal or UnaryExpression ? FindStatefulInitializer(unary.Argument) : node;
            case BinaryExpression binary:
                return IsArithmeticOnLiterals(binary.Left) && IsArithmeticOnLiterals(binary.Right) ? null : node;
            case CallExpression { Callee: MemberExpression { Object: Identifier { Name: "Object" }, Property: Identifier { Name: "freeze" }, Computed: false } } freeze:
                return freeze.Arguments.Count == 1 && freeze.Arguments[0] is not SpreadElement ? FindStatefulInitializer(freeze.Arguments[0]) : node;
            default:
                return node;
        }
    }

    private static bool IsArithmeticOnLiterals(Node node) => node switch
    {
        Literal => true,
        UnaryExpression { Argument: var argument } => IsArithmeticOnLiterals(argument),
        BinaryExpression binary => IsArithmeticOnLiterals(binary.Left) && IsArithmeticOnLiterals(binary.Right),
        _ => false,
    };

    /// <summary>Runs one transition in a pooled sandbox.</summary>
    public ScriptResult Run(ScriptInput input) =>
        // On a script thread (the pipeline) directly, without a closure per transition.
        ScriptThreads.IsCurrent ? Pool.Run(input) : ScriptThreads.Run(() => Pool.Run(input));
}

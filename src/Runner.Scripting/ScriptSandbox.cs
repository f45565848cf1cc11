using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Acornima.Ast;
using Jint;
using Jint.Native;
using Jint.Native.Json;
using Jint.Runtime;
using Jint.Runtime.Descriptors;
using Jint.Runtime.Interop;
using Runner.Core.Ids;
using Runner.Core.Transitions;

namespace Runner.Scripting;

/// <summary>
/// One Jint engine holding one loaded saga script, made safe to reuse across instances: every
/// intrinsic (Object.prototype, Array.prototype, Math, JSON...) and everything the script declares
/// at top level is deep-frozen, and the script runs in strict mode, so a write to shared objects
/// throws instead of leaking into the next instance. Time and randomness come only from the input.
/// </summary>
internal sealed partial class ScriptSandbox
{
    private readonly SagaScript _script;
    private readonly Engine _engine;
    private readonly SandboxBudget _budget = new();
    private readonly DeterministicClock _clock = new();
    private readonly SeededRandom _random = new();
    private readonly JsonParser _parser;
    private readonly JsonToJs _json;
    private readonly Func<string, JsValue> _parse;
    private readonly JsValue[] _eventFields = new JsValue[EventArgument.Fields];
    private readonly JsonSerializer _serializer;
    private readonly JsValue _onEvent;
    private readonly JsValue _compensate;
    private readonly JsValue _id;
    private readonly JsValue _randomFunction;
    private ScriptInput? _current;

    public ScriptSandbox(SagaScript script)
    {
        _script = script;
        var limits = script.Limits;
        var parseDepth = 0;
        _engine = new Engine(options =>
        {
            parseDepth = options.Json.MaxParseDepth;
            options.Strict = true;
            options.Interop.Enabled = false;
            options.DisableStringCompilation();
            options.LimitRecursion(limits.Recursion);

            // Jint's own allocation check also charges string concatenations it has not built
            // yet, which our sampled budget cannot see; both apply.
            options.LimitMemory(limits.MemoryMb * 1024L * 1024L);
            options.Constraints.MaxArraySize = (uint)limits.MaxArraySize;
            options.Constraints.RegexTimeout = TimeSpan.FromMilliseconds(limits.RegexTimeoutMs);
            options.TimeSystem = _clock;
            options.Constraint(_budget);
        });
        _parser = new JsonParser(_engine);
        _json = new JsonToJs(_engine, parseDepth, (uint)limits.MaxArraySize);
        _parse = _parser.Parse;
        _serializer = new JsonSerializer(_engine);

        var random = new ClrFunction(_engine, "random", (_, _) => new JsNumber(_random.NextDouble()));
        var id = new ClrFunction(_engine, "id", (_, args) => new JsString(DeriveId(args.Length > 0 ? args[0] : JsValue.Undefined)));
        _engine.Invoke(_engine.Evaluate(SandboxSetup.InstallRandom), JsValue.Undefined, [random]);
        _engine.Invoke(_engine.Evaluate(SandboxSetup.FreezeHostFunctions), JsValue.Undefined, [id, random]);
        _id = id;
        _randomFunction = random;
        _engine.Execute(SandboxSetup.FreezeIntrinsics);

        // Module-level code of the script runs under the same budget as an event.
        _budget.Arm(limits.MaxStatements, TimeSpan.FromMilliseconds(limits.TimeoutMs * 10L), limits.MemoryMb * 1024L * 1024L * 4);
        try
        {
            _engine.Execute(script.Prepared);
        }
        finally
        {
            _budget.Disarm();
        }
        _engine.Execute(SandboxSetup.FreezeUserGlobals(TopLevelConstNames(script.Prepared.Program!)));

        _onEvent = _engine.GetValue("on_event");
        _compensate = script.HasCompensate ? _engine.GetValue("compensate") : JsValue.Undefined;
    }

    /// <summary>Runs one transition. <paramref name="reusable"/> is false when the engine must be dropped.</summary>
    public ScriptResult Run(ScriptInput input, out bool reusable)
    {
        reusable = false;
        var handler = input.Handler == ScriptHandler.Compensate ? _compensate : _onEvent;
        if (handler.IsUndefined())
        {
            reusable = true;
            return ScriptResult.Fail(ScriptFailure.NoHandler, $"script defines no {(input.Handler == ScriptHandler.Compensate ? "compensate" : "on_event")} function");
        }

        var limits = _script.Limits;
        _current = input;
        _clock.NowMs = input.NowMs;
        _random.SeedLazily(input.EventId);
        string? json;
        _budget.Arm(limits.MaxStatements, TimeSpan.FromMilliseconds(limits.TimeoutMs), limits.MemoryMb * 1024L * 1024L);
        try
        {
            var state = StateArgument(input);
            var evt = input.Event is { } sagaEvent
                ? EventArgument.Build(_engine, _json, _parse, sagaEvent, input.Origin, _eventFields)
                : Parse(input.EventJson ?? throw new ArgumentException("a script input needs an event", nameof(input)));
            var ctx = Context(input);
            var returned = _engine.Invoke(handler, JsValue.Undefined, [state, evt, ctx]);
            if (returned.IsUndefined() || returned.IsNull())
            {
                reusable = true;
                return ScriptResult.Fail(ScriptFailure.OutputContract, "on_event returned nothing; it must return { state, commands, schedules, cancel, done }");
            }
            var serialized = _serializer.Serialize(returned);
            json = serialized.IsString() ? serialized.AsString() : null;
            _budget.CheckAfterCall();
        }
        catch (SandboxLimitException ex)
        {
            return ScriptResult.Fail(ex.Code, ex.Message);
        }
        catch (RecursionDepthOverflowException ex)
        {
            return ScriptResult.Fail(ScriptFailure.RecursionLimit, $"recursion deeper than {limits.Recursion}: {ex.Message}");
        }
        catch (MemoryLimitExceededException ex)
        {
            return ScriptResult.Fail(ScriptFailure.MemoryLimit, ex.Message);
        }
        catch (RegexMatchTimeoutException)
        {
            return ScriptResult.Fail(ScriptFailure.RegexTimeout, $"a regular expression ran past {limits.RegexTimeoutMs} ms");
        }
        catch (JavaScriptException ex)
        {
            return ScriptResult.Fail(ScriptFailure.ScriptError, Describe(ex));
        }
        catch (Exception ex) when (ex is JintException or InvalidOperationException or ArgumentException or InsufficientExecutionStackException or OutOfMemoryException)
        {
            return ScriptResult.Fail(ScriptFailure.ScriptError, ex.Message);
        }
        finally
        {
            _budget.Disarm();
            _current = null;
        }

        reusable = true;
        if (json is null)
        {
            return ScriptResult.Fail(ScriptFailure.OutputContract, "result is not JSON-serializable");
        }
        var bytes = json.Length > limits.MaxOutputBytes / 3 ? System.Text.Encoding.UTF8.GetByteCount(json) : json.Length;
        if (bytes > limits.MaxOutputBytes)
        {
            return ScriptResult.Fail(ScriptFailure.OutputTooLarge, $"result is {bytes} bytes of JSON, the limit is {limits.MaxOutputBytes}");
        }
        if (!TransitionOutputParser.TryParse(json, input.NowMs, out var output, out var error))
        {
            return ScriptResult.Fail(ScriptFailure.OutputContract, error!);
        }
        return ScriptResult.Ok(output!);
    }

    /// <summary>The <c>state</c> argument: the stored document's UTF-8 bytes when given, else the text; <c>null</c> for a new instance.</summary>
    private JsValue StateArgument(ScriptInput input)
    {
        if (input.State is { ValueKind: not System.Text.Json.JsonValueKind.Undefined } state)
        {
            return _json.TryConvert(JsonMarshal.GetRawUtf8Value(state), out var value) ? value : _parser.Parse(state.GetRawText());
        }
        return input.StateJson is null ? JsValue.Null : Parse(input.StateJson);
    }

    private JsValue Parse(string json) => _json.TryConvert(json, out var value) ? value : _parser.Parse(json);

    /// <summary>
    /// The frozen <c>ctx</c> argument <c>{ now, saga, key, tenant, id, random }</c>, built here rather than by a
    /// script call per transition (<c>Object.freeze</c> of a literal cost a whole engine invocation): every
    /// property enumerable, not writable, not configurable, and the object not extensible.
    /// </summary>
    private JsObject Context(ScriptInput input)
    {
        var ctx = new JsObject(_engine);
        ctx.FastSetProperty("now", new PropertyDescriptor(new JsNumber(input.NowMs), PropertyFlag.OnlyEnumerable));
        ctx.FastSetProperty("saga", new PropertyDescriptor(_json.String(input.Saga), PropertyFlag.OnlyEnumerable));
        ctx.FastSetProperty("key", new PropertyDescriptor(new JsString(input.Key), PropertyFlag.OnlyEnumerable));
        ctx.FastSetProperty("tenant", new PropertyDescriptor(_json.String(input.Tenant), PropertyFlag.OnlyEnumerable));
        ctx.FastSetProperty("id", new PropertyDescriptor(_id, PropertyFlag.OnlyEnumerable));
        ctx.FastSetProperty("random", new PropertyDescriptor(_randomFunction, PropertyFlag.OnlyEnumerable));
        ctx.PreventExtensions();
        return ctx;
    }

    private string DeriveId(JsValue name)
    {
        var input = _current ?? throw new InvalidOperationException("ctx.id called outside a transition");
        if (!name.IsString() || name.AsString().Length == 0)
        {
            throw new JavaScriptException(_engine.Intrinsics.TypeError, "ctx.id(name) needs a non-empty string name");
        }
        return CommandIds.Derive(new TenantId(input.Tenant), new SagaName(input.Saga), new CorrelationKey(input.Key), input.EventId, name.AsString()).Value;
    }

    private static string Describe(JavaScriptException ex)
    {
        var line = ex.Location.Start.Line;
        return line > 0 ? $"{ex.Message} (line {line})" : ex.Message;
    }

    private static List<string> TopLevelConstNames(Acornima.Ast.Program program)
    {
        var names = new List<string>();
        foreach (var statement in program.Body)
        {
            if (statement is VariableDeclaration declaration)
            {
                foreach (var declarator in declaration.Declarations)
                {
                    if (declarator.Id is Identifier identifier)
                    {
                        names.Add(identifier.Name);
                    }
                    else
                    {
                        throw new InvalidOperationException("top-level const must bind a single name (no destructuring)");
                    }
                }
            }
        }
        return names;
    }
}

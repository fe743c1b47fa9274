using System.Reflection;
using System.Reflection.Emit;
using TorchSharp;

namespace R1Sharp.Tests.Kernels;

/// <summary>
/// The TorchSharp methods that make a Scalar themselves and let it go while libtorch reads it, read from the IL of the
/// TorchSharp assembly the tests run with (so an upgrade is checked as it lands). A method makes one when its body calls
/// Scalar's op_Implicit or a ToScalar (of a number or a tensor) and the Scalar is neither returned to the caller nor
/// stored in a local that a Dispose (a <c>using</c>) later reads; or when it calls a TorchSharp method that makes one
/// (<c>a + b</c> calls <c>a.add(b)</c>, which calls <c>add(b, 1)</c> with 1 converted on the spot). In TorchSharp
/// 0.107: add/add_ and torch.add without alpha, every <c>+</c>, <c>Scalar − Tensor</c>, the operators with a C# number
/// (+ − * / %), addcdiv without value, square (pow(2)), arange without start or step, normal(double, double, …), the
/// ToDouble/ToSingle/ToInt64… reads of a tensor and its explicit casts, tolist and the printing methods, elu/celu/
/// softplus/hardtanh/threshold/leaky_relu/mish/softsign, vector_norm/matrix_norm with a double ord, and inside
/// TorchSharp's own optimizers, distributions and BatchNorm. Not sub, mul, div, pow, clamp, masked_fill, where: those
/// take the caller's Scalar as it is, so the caller holds it.
/// </summary>
static class TorchSharpTemporaries
{
    static readonly Lazy<Dictionary<string, string>> Methods = new(Scan);

    /// <summary>Why the method with this <see cref="Key(MethodBase)"/> makes a temporary Scalar, or null.</summary>
    public static string? Why(string key) => Methods.Value.GetValueOrDefault(key);

    public static IReadOnlyDictionary<string, string> All => Methods.Value;

    /// <summary>"Declaring.Type::name(ParamType,…)", with nested types joined by dots, generic types by their metadata
    /// names (Nullable`1) and arrays as Element[]: the same string <see cref="ScalarTemporaries"/> builds from a symbol.</summary>
    public static string Key(MethodBase m) =>
        $"{(m.DeclaringType!.FullName ?? m.DeclaringType.Name).Replace('+', '.')}::{m.Name}({string.Join(",", m.GetParameters().Select(p => ParamName(p.ParameterType)))})";

    static string ParamName(Type t) => t.IsByRef ? ParamName(t.GetElementType()!) : t.IsArray ? ParamName(t.GetElementType()!) + "[]" : t.Name;

    static Dictionary<string, string> Scan()
    {
        var assembly = typeof(Scalar).Assembly;
        Type[] types;
        try { types = assembly.GetTypes(); }
        catch (ReflectionTypeLoadException e) { types = e.Types.OfType<Type>().ToArray(); }
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var direct = new Dictionary<MethodBase, string>();
        var calls = new Dictionary<MethodBase, List<MethodBase>>();
        foreach (var type in types)
            foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                var (made, callees) = Read(method);
                calls[method] = callees;
                if (made is not null) direct[method] = made;
            }

        // A method makes a temporary if it makes one itself or calls (within TorchSharp) a method that does.
        var memo = new Dictionary<MethodBase, string?>();
        string? Makes(MethodBase m)
        {
            if (memo.TryGetValue(m, out var known)) return known;
            memo[m] = null; // a cycle adds nothing
            string? why = direct.TryGetValue(m, out var d) ? d : null;
            if (why is null && calls.TryGetValue(m, out var callees))
                foreach (var c in callees)
                    if (c.Module == assembly.ManifestModule && Makes(c) is { } inner)
                    {
                        why = inner;
                        break;
                    }
            return memo[m] = why;
        }

        var result = new Dictionary<string, string>();
        foreach (var type in types.Where(t => t.IsVisible))
            foreach (var method in type.GetMethods(all).Where(m => m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly)) // what src can call
                if (Makes(method) is { } why) result.TryAdd(Key(method), why);
        return result;
    }

    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>The first Scalar the method makes and lets go (null if none), and the methods it calls.</summary>
    static (string? Made, List<MethodBase> Callees) Read(MethodBase method)
    {
        var callees = new List<MethodBase>();
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is BadImageFormatException or FileNotFoundException or TypeLoadException) { il = null; }
        if (il is null) return (null, callees);

        var ops = new List<(OpCode Op, int Operand, MethodBase? Callee)>();
        for (int i = 0; i < il.Length;)
        {
            var op = il[i] == 0xFE ? OpCodesByValue[(short)(0xFE00 | il[i + 1])] : OpCodesByValue[il[i]];
            i += op.Size;
            int size = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
            int operand = size switch { 1 => il[i], 2 => BitConverter.ToUInt16(il, i), 4 => BitConverter.ToInt32(il, i), _ => 0 };
            MethodBase? callee = null;
            if (op.OperandType == OperandType.InlineMethod)
            {
                try
                {
                    callee = method.Module.ResolveMethod(operand, method.DeclaringType?.IsGenericType == true ? method.DeclaringType.GetGenericArguments() : null,
                        method.IsGenericMethod ? method.GetGenericArguments() : null);
                }
                catch (Exception e) when (e is ArgumentException or BadImageFormatException or FileNotFoundException or TypeLoadException) { }
                if (callee is not null) callees.Add(callee);
            }
            ops.Add((op, operand, callee));
            i += size;
        }

        for (int k = 0; k < ops.Count; k++)
        {
            if (ops[k].Callee is not { } c || !MakesScalar(c)) continue;
            var next = k + 1 < ops.Count ? ops[k + 1].Op : OpCodes.Ret;
            if (next == OpCodes.Ret) continue; // handed to the caller, who holds it or not
            if (StoredLocal(ops[k + 1]) is int local && DisposedLater(ops, local)) continue; // `using var s = …`
            return ($"Scalar made by {c.DeclaringType!.Name}.{c.Name}({string.Join(",", c.GetParameters().Select(p => p.ParameterType.Name))}) in {Key(method)}", callees);
        }
        return (null, callees);
    }

    static bool MakesScalar(MethodBase m) =>
        m.DeclaringType == typeof(Scalar) && (m.Name == "op_Implicit" || m.IsConstructor)
        || m is MethodInfo { Name: "ToScalar" or "ToFloat16Scalar" or "ToBFloat16Scalar" } mi && mi.ReturnType == typeof(Scalar);

    static int? StoredLocal((OpCode Op, int Operand, MethodBase? _) x) =>
        x.Op == OpCodes.Stloc_0 ? 0 : x.Op == OpCodes.Stloc_1 ? 1 : x.Op == OpCodes.Stloc_2 ? 2 : x.Op == OpCodes.Stloc_3 ? 3
        : x.Op == OpCodes.Stloc_S || x.Op == OpCodes.Stloc ? x.Operand : null;

    static int? LoadedLocal((OpCode Op, int Operand, MethodBase? _) x) =>
        x.Op == OpCodes.Ldloc_0 ? 0 : x.Op == OpCodes.Ldloc_1 ? 1 : x.Op == OpCodes.Ldloc_2 ? 2 : x.Op == OpCodes.Ldloc_3 ? 3
        : x.Op == OpCodes.Ldloc_S || x.Op == OpCodes.Ldloc ? x.Operand : null;

    /// <summary>Whether the local is loaded for a Dispose call somewhere (the finally of a using).</summary>
    static bool DisposedLater(List<(OpCode Op, int Operand, MethodBase? Callee)> ops, int local)
    {
        for (int k = 0; k + 1 < ops.Count; k++)
            if (LoadedLocal(ops[k]) == local && ops[k + 1].Callee is { Name: "Dispose" }) return true;
        return false;
    }
}

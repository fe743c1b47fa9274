using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace R1Sharp.Tests.Kernels;

/// <summary>
/// Finds TorchSharp <c>Scalar</c>s that nothing holds while libtorch reads them. Scalar has a finalizer that frees the
/// native c10::Scalar; a Scalar made for one call (a C# number converted where a Scalar is wanted, <c>x.ToScalar()</c>
/// passed straight on, or one TorchSharp makes inside the call) is unreferenced once its handle is read, so a collection
/// triggered by another thread during the native call can free it before libtorch reads it ("Expected false to be
/// true" in Scalar::toFloat). Held means a static or instance field, or a local declared with <c>using</c> (its
/// Dispose after the call keeps it reachable until then).
/// </summary>
static class ScalarTemporaries
{
    public sealed record Finding(string File, int Line, string What)
    {
        public override string ToString() => $"{File}:{Line}: {What}";
    }

    /// <summary>Every unheld Scalar in the compilation's trees, with paths relative to <paramref name="root"/>, and every
    /// expression the compiler could not bind (an unresolved type would hide its calls, so the caller checks there are
    /// none).</summary>
    public static List<Finding> Find(Compilation compilation, string root = "") => Find(compilation, root, out _);

    public static List<Finding> Find(Compilation compilation, string root, out List<Finding> unbound)
    {
        unbound = [];
        var scalar = compilation.GetTypeByMetadataName("TorchSharp.Scalar") ?? throw new InvalidOperationException("TorchSharp is not referenced");
        var findings = new List<Finding>();
        foreach (var tree in compilation.SyntaxTrees)
        {
            var model = compilation.GetSemanticModel(tree);
            foreach (var node in tree.GetRoot().DescendantNodes())
            {
                if (node is not (BaseMethodDeclarationSyntax or AccessorDeclarationSyntax or ArrowExpressionClauseSyntax
                    or EqualsValueClauseSyntax or PrimaryConstructorBaseTypeSyntax)) continue;
                var body = model.GetOperation(node);
                if (body is null || body.Parent is not null) continue; // a member's whole body, each once
                foreach (var op in body.DescendantsAndSelf())
                {
                    if (op is IInvalidOperation) unbound.Add(At(op, root, $"`{op.Syntax}` does not bind"));
                    string? what = Fresh(op, scalar) is { } fresh ? Unheld(op, fresh) : InternalTemporary(op);
                    if (what is not null) findings.Add(At(op, root, what));
                    if (SharedDisposed(op, scalar) is { } disposed) findings.Add(At(op, root, disposed));
                }
            }
        }
        return findings.Distinct().OrderBy(f => f.File, StringComparer.Ordinal).ThenBy(f => f.Line).ToList();
    }

    static Finding At(IOperation op, string root, string what)
    {
        var span = op.Syntax.GetLocation().GetLineSpan();
        return new Finding((root.Length == 0 ? span.Path : Path.GetRelativePath(root, span.Path)).Replace('\\', '/'), span.StartLinePosition.Line + 1, what);
    }

    /// <summary>A description of op if it makes a new Scalar: a conversion to Scalar (implicit or a cast) or a
    /// TorchSharp method returning one (ToScalar of a number or a tensor).</summary>
    static string? Fresh(IOperation op, INamedTypeSymbol scalar) => op switch
    {
        IConversionOperation c when SymbolEqualityComparer.Default.Equals(c.OperatorMethod?.ContainingType, scalar) =>
            $"{c.Operand.Type?.ToDisplayString() ?? "value"} `{c.Operand.Syntax}` converted to a temporary Scalar",
        IInvocationOperation i when SymbolEqualityComparer.Default.Equals(i.TargetMethod.ReturnType, scalar)
            && i.TargetMethod.ContainingAssembly?.Name == "TorchSharp" => $"`{i.Syntax}` makes a Scalar",
        _ => null,
    };

    /// <summary>Null if the new Scalar is stored where it stays reachable past the calls that read it.</summary>
    static string? Unheld(IOperation fresh, string what)
    {
        var parent = fresh.Parent;
        switch (parent)
        {
            case IFieldInitializerOperation:
            case IPropertyInitializerOperation:
            case ISimpleAssignmentOperation { Target: IFieldReferenceOperation } a when a.Value == fresh:
                return null;
            case IVariableInitializerOperation { Parent: IVariableDeclaratorOperation { Parent: IVariableDeclarationOperation { Parent: { } group } } }:
                // `using var s = …;` or `using (var s = …)`: disposed after its last use, so reachable until then
                if (group is IUsingDeclarationOperation || group.Parent is IUsingDeclarationOperation || group.Parent is IUsingOperation || group is IUsingOperation)
                    return null;
                return what + " held in a local without `using` (collectible after its last use)";
        }
        return what + " that nothing holds during the call";
    }

    /// <summary>A description if op disposes a Scalar held in a static field (HeldScalars.One, Ops.One): `using` it,
    /// or calling its Dispose, frees the one native value every later call reads.</summary>
    static string? SharedDisposed(IOperation op, INamedTypeSymbol scalar)
    {
        IOperation? resource = op switch
        {
            IVariableInitializerOperation { Parent: IVariableDeclaratorOperation { Parent: IVariableDeclarationOperation { Parent: { } group } } } v
                when group is IUsingDeclarationOperation || group.Parent is IUsingDeclarationOperation || group.Parent is IUsingOperation || group is IUsingOperation => v.Value,
            IUsingOperation { Resources: { } r } when r is not IVariableDeclarationGroupOperation => r,
            IInvocationOperation { TargetMethod.Name: "Dispose", Instance: { } instance } => instance,
            _ => null,
        };
        while (resource is IConversionOperation { IsImplicit: true } c) resource = c.Operand;
        return resource is IFieldReferenceOperation { Field: { IsStatic: true } field } && SymbolEqualityComparer.Default.Equals(field.Type, scalar)
            ? $"`{op.Syntax}` disposes the shared Scalar {field.ContainingType.Name}.{field.Name} (freed for every later reader)"
            : null;
    }

    /// <summary>A description if op calls a TorchSharp method that makes a Scalar inside and lets it go while libtorch
    /// reads it (<see cref="TorchSharpTemporaries"/>, read from TorchSharp's IL): a call, an operator, a cast, or a
    /// method group handed on as a delegate.</summary>
    static string? InternalTemporary(IOperation op)
    {
        var method = op switch
        {
            IInvocationOperation i => i.TargetMethod,
            IBinaryOperation b => b.OperatorMethod,
            ICompoundAssignmentOperation c => c.OperatorMethod,
            IConversionOperation c => c.OperatorMethod,
            IUnaryOperation u => u.OperatorMethod,
            IMethodReferenceOperation r => r.Method,
            _ => null,
        };
        if (method is null || method.ContainingAssembly?.Name != "TorchSharp") return null;
        method = (method.ReducedFrom ?? method).OriginalDefinition;
        return TorchSharpTemporaries.Why(Key(method)) is { } why ? $"`{op.Syntax}` calls {method.ContainingType.Name}.{method.Name}: {why}" : null;
    }

    /// <summary>The method's <see cref="TorchSharpTemporaries.Key"/>.</summary>
    static string Key(IMethodSymbol m) => $"{TypeName(m.ContainingType)}::{m.MetadataName}({string.Join(",", m.Parameters.Select(p => ParamName(p.Type)))})";

    static string TypeName(INamedTypeSymbol t) => (t.ContainingType is { } outer ? TypeName(outer) : t.ContainingNamespace.ToDisplayString()) + "." + t.MetadataName;

    static string ParamName(ITypeSymbol t) => t is IArrayTypeSymbol a ? ParamName(a.ElementType) + "[]" : t.MetadataName;
}

using System.Globalization;
using Antlr4.Runtime;
using HwGen.Core.Ir.Text.Generated;

namespace HwGen.Core.Ir.Text;

/// <summary>Parses textual HwGen IR (Text/HwIr.g4) into graphs. Errors name the file, line and column.
/// A <c>const&lt;...&gt;</c> reference is read from its constants file in <paramref name="constantsDirectory"/>: by
/// default the directory of <c>file</c> (the current directory for text that is not a file).</summary>
public static class Parser
{
    public static IReadOnlyList<Graph> Parse(string text, string file = "<input>", string? constantsDirectory = null)
    {
        using var constants = new Constants.Reader(constantsDirectory ?? (File.Exists(file) ? Path.GetDirectoryName(Path.GetFullPath(file))! : "."));
        var lexer = new HwIrLexer(new AntlrInputStream(text));
        var parser = new HwIrParser(new CommonTokenStream(lexer));
        var errors = new ErrorListener(file);
        lexer.RemoveErrorListeners();
        lexer.AddErrorListener(errors);
        parser.RemoveErrorListeners();
        parser.AddErrorListener(errors);
        var tree = parser.module();
        return tree.graph().Select(g => Build(g, file, constants)).ToList();
    }

    public static Graph ParseOne(string text, string file = "<input>", string? constantsDirectory = null) =>
        Parse(text, file, constantsDirectory) is [var g] ? g : throw new HwGenException($"{file}: expected exactly one graph");

    static HwGenException At(string file, IToken t, string why) => new($"{file}:{t.Line}:{t.Column + 1}: {why}");

    sealed class ErrorListener(string file) : IAntlrErrorListener<IToken>, IAntlrErrorListener<int>
    {
        public void SyntaxError(TextWriter output, IRecognizer recognizer, IToken offendingSymbol, int line, int col, string msg, RecognitionException e) =>
            throw new HwGenException($"{file}:{line}:{col + 1}: syntax error: {msg}");
        public void SyntaxError(TextWriter output, IRecognizer recognizer, int offendingSymbol, int line, int col, string msg, RecognitionException e) =>
            throw new HwGenException($"{file}:{line}:{col + 1}: syntax error: {msg}");
    }

    static double Number(string s) => s switch
    {
        "inf" => double.PositiveInfinity, "-inf" => double.NegativeInfinity, "nan" => double.NaN,
        _ => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    static Graph Build(HwIrParser.GraphContext g, string file, Constants.Reader constants)
    {
        var graph = new Graph(g.GRAPHNAME().GetText()[1..]);
        var values = new Dictionary<string, Value>();
        Value Define(ITerminalNodeWrapper v, TensorType type)
        {
            var name = v.Text[1..];
            if (values.ContainsKey(name)) throw At(file, v.Token, $"value %{name} is defined twice");
            return values[name] = new Value(name, type);
        }
        Value Use(Antlr4.Runtime.Tree.ITerminalNode v) =>
            values.TryGetValue(v.GetText()[1..], out var x) ? x : throw At(file, v.Symbol, $"value {v.GetText()} is not defined");

        foreach (var a in g.arg()) graph.Inputs.Add(Define(new(a.VALUE()), Type(a.type(), file)));
        foreach (var o in g.op())
        {
            var mnemonic = o.IDENT().GetText();
            if (!OpSyntax.Ops.TryGetValue(mnemonic, out var factory)) throw At(file, o.IDENT().Symbol, $"unknown op {mnemonic}");
            var operands = o.VALUE().Skip(1).Select(Use).ToList();
            var attrs = new Dictionary<string, Attr>();
            foreach (var a in o.attrs()?.attr() ?? [])
                if (!attrs.TryAdd(a.IDENT().GetText(), ToAttr(a.attrValue(), file, constants))) throw At(file, a.Start, $"{mnemonic}: attribute '{a.IDENT().GetText()}' is given twice");
            var result = Define(new(o.VALUE(0)), Type(o.type(), file));
            var name = o.loc() is { } l ? Unquote(l.STRING().Symbol, file).Value : result.Name;
            try
            {
                graph.Ops.Add(factory(name, operands, result, new AttrMap(attrs, why => At(file, o.Start, $"{mnemonic}: {why}"))));
            }
            catch (HwGenException e) when (!e.Message.StartsWith(file)) { throw At(file, o.Start, e.Message); }
        }
        graph.Outputs.AddRange(g.ret().VALUE().Select(Use));
        return graph;
    }

    readonly record struct ITerminalNodeWrapper(Antlr4.Runtime.Tree.ITerminalNode Node)
    {
        public string Text => Node.GetText();
        public IToken Token => Node.Symbol;
    }

    /// <summary>A string literal's text: the escapes the printer writes (<c>\\</c>, <c>\"</c>, <c>\n</c>, <c>\r</c>, <c>\t</c>,
    /// <c>\uXXXX</c>); another escape is an error at the literal.</summary>
    static Attr.Str Unquote(IToken token, string file)
    {
        var q = token.Text;
        var sb = new System.Text.StringBuilder(q.Length);
        for (int i = 1; i < q.Length - 1; i++)
        {
            if (q[i] != '\\') { sb.Append(q[i]); continue; }
            char e = q[++i];
            if (e == 'u' && i + 4 < q.Length - 1 && ushort.TryParse(q.AsSpan(i + 1, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var u))
            {
                sb.Append((char)u);
                i += 4;
                continue;
            }
            sb.Append(e switch
            {
                '\\' or '"' => e, 'n' => '\n', 'r' => '\r', 't' => '\t',
                _ => throw At(file, token, $"string {q} has an unknown escape \\{e} (known: \\\\, \\\", \\n, \\r, \\t, \\uXXXX)"),
            });
        }
        return new Attr.Str(sb.ToString());
    }

    static Attr ToAttr(HwIrParser.AttrValueContext c, string file, Constants.Reader? constants) => c switch
    {
        HwIrParser.NumberAttrContext n => new Attr.Num(Number(n.NUMBER().GetText())),
        HwIrParser.StringAttrContext s => Unquote(s.STRING().Symbol, file),
        HwIrParser.IdentAttrContext i => new Attr.Ident(i.IDENT().GetText()),
        HwIrParser.ListAttrContext l => new Attr.List(l.attrValue().Select(v => ToAttr(v, file, constants)).ToArray()),
        HwIrParser.RefAttrContext r => Reference(r, file, constants),
        _ => throw new InvalidOperationException("unknown attribute form"),
    };

    static Attr Reference(HwIrParser.RefAttrContext r, string file, Constants.Reader? constants)
    {
        if (r.IDENT().GetText() != "const" || constants is null) throw At(file, r.Start, $"unknown reference {r.IDENT().GetText()}<...> (only const<...> in attributes)");
        var fields = new Dictionary<string, Attr>();
        foreach (var a in r.attr())
            if (!fields.TryAdd(a.IDENT().GetText(), ToAttr(a.attrValue(), file, null))) throw At(file, a.Start, $"const<...> gives '{a.IDENT().GetText()}' twice");
        return constants.Read(fields, why => At(file, r.Start, why));
    }

    /// <summary>Why quantization parameters are malformed: no scales, not one zero point per scale, or a scale that is not
    /// positive and finite. (A per-channel axis may lie outside the shape: a layout no-op keeps its operand's parameters.)</summary>
    static string? QuantProblem(QuantParams q) =>
        q.Scales.Count == 0 ? "per-channel quantization needs at least one scale"
        : q.ZeroPoints.Count != q.Scales.Count ? $"per-channel quantization has {q.Scales.Count} scales and {q.ZeroPoints.Count} zero points; it needs one zero point per scale"
        : q.Scales.Where(x => !(x > 0) || !double.IsFinite(x)).Select(x => (double?)x).FirstOrDefault() is { } bad
            ? $"scale {Attr.Number(bad)} is not positive and finite"
        : null;

    static readonly Dictionary<string, DType> Elems = Enum.GetValues<DType>().ToDictionary(t => t.Name());

    static TensorType Type(HwIrParser.TypeContext t, string file)
    {
        var elemName = t.IDENT().GetText();
        if (!Elems.TryGetValue(elemName, out var elem)) throw At(file, t.IDENT().Symbol, $"unknown element type {elemName}");
        var shape = t.NUMBER().Select(n => (int)Integer(n.Symbol, "a dim", 0, int.MaxValue)).ToArray();
        if (Limits.ShapeProblem(shape) is { } bad) throw At(file, t.Start, bad);
        QuantParams? q = t.quant() switch
        {
            null => null,
            HwIrParser.PerTensorContext p => QuantParams.PerTensor(Number(p.NUMBER(0).GetText()), Integer(p.NUMBER(1).Symbol, "a zero point", int.MinValue, int.MaxValue)),
            HwIrParser.PerChannelContext p => new QuantParams(ListOf(ToAttr(p.attrValue(0), file, null)),
                ListOf(ToAttr(p.attrValue(1), file, null)).Select(d => d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue ? (long)d : throw At(file, t.Start, "zero points must be integers")).ToArray(),
                (int)Integer(p.NUMBER().Symbol, "an axis", int.MinValue, int.MaxValue)),
            _ => null,
        };
        if (q is not null && QuantProblem(q) is { } why) throw At(file, t.Start, why);
        return new TensorType(elem, shape, q);

        long Integer(IToken token, string what, long min, long max)
        {
            double d = Number(token.Text);
            return d == Math.Floor(d) && d >= min && d <= max ? (long)d : throw At(file, token, $"{what} must be an integer in [{min}, {max}], got {token.Text}");
        }

        double[] ListOf(Attr a) => a is Attr.List l && l.Items.All(i => i is Attr.Num)
            ? l.Items.Select(i => ((Attr.Num)i).Value).ToArray() : throw At(file, t.Start, "per-channel scales and zero points must be lists of numbers");
    }
}

// Textual form of HwGen IR. Printed by Printer.cs, parsed by Parser.cs; the two round-trip exactly.
//
//   graph @mlp(%x: f32[1,64]) {
//     %q = hw.quantize(%x) {scale=0.0039, zp=-128} : i8[1,64] q<0.0039, -128> loc("quant")
//     %y = hw.qgemm(%q) {k=64, n=10, weights=[...], ...} : i8[1,10] q<0.05, 3> loc("fc")
//     %o = hw.dequantize(%y) : f32[1,10] loc("out")
//     return %o
//   }
//
// A long list may be printed as a reference into a binary constants file beside the text (Constants.cs):
//   weights=const<file="model.consts", offset=0, count=640, type=i8, sha256="1f0c...", head=[3, -7, ...]>
grammar HwIr;

module     : graph* EOF ;
graph      : 'graph' GRAPHNAME '(' (arg (',' arg)*)? ')' '{' op* ret '}' ;
arg        : VALUE ':' type ;
op         : VALUE '=' IDENT '(' (VALUE (',' VALUE)*)? ')' attrs? ':' type loc? ;
ret        : 'return' VALUE (',' VALUE)* ;
loc        : 'loc' '(' STRING ')' ;
attrs      : '{' attr (',' attr)* '}' ;
attr       : IDENT '=' attrValue ;
attrValue  : NUMBER                                   # numberAttr
           | STRING                                   # stringAttr
           | IDENT                                    # identAttr
           | '[' (attrValue (',' attrValue)*)? ']'    # listAttr
           | IDENT '<' attr (',' attr)* '>'           # refAttr     // const<file="model.consts", offset=0, ...>: Constants.cs
           ;
type       : IDENT '[' (NUMBER (',' NUMBER)*)? ']' quant? ;
quant      : 'q' '<' NUMBER ',' NUMBER '>'                                                    # perTensor
           | 'q' '<' 'axis' '=' NUMBER ',' attrValue ',' attrValue '>'                        # perChannel
           ;

GRAPHNAME  : '@' [a-zA-Z_] [a-zA-Z0-9_]* ;
VALUE      : '%' [a-zA-Z0-9_]+ ;
NUMBER     : '-'? ([0-9]+ ('.' [0-9]*)? | '.' [0-9]+) ([eE] [+-]? [0-9]+)? | '-'? 'inf' | 'nan' ;
IDENT      : [a-zA-Z_] [a-zA-Z0-9_.]* ;
STRING     : '"' (~["\\\r\n] | '\\' .)* '"' ;
COMMENT    : '//' ~[\r\n]* -> skip ;
WS         : [ \t\r\n]+ -> skip ;

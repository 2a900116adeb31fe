/*! neuroerp-ui-kit v1.4.2 | (c) VALEO NeuroERP | Apache-2.0 — prebuilt vendor chunk */
(function(g){"use strict";
var E=Object.freeze({}),H=Object.prototype.hasOwnProperty;
function h(t,p){var e=document.createElement(t),a=p||E,k;for(k in a){if(!H.call(a,k))continue;var v=a[k];
if(k==="class")e.className=v;else if(k==="text")e.textContent=v;else if(k.slice(0,2)==="on"&&typeof v==="function")e.addEventListener(k.slice(2).toLowerCase(),v);
else if(v===true)e.setAttribute(k,"");else if(v!=null&&v!==false)e.setAttribute(k,String(v));}
for(var i=2;i<arguments.length;i++)app(e,arguments[i]);return e}
function app(e,c){if(c==null||c===false)return;if(Array.isArray(c)){for(var i=0;i<c.length;i++)app(e,c[i]);return}
e.appendChild(c instanceof Node?c:document.createTextNode(String(c)))}
function mount(r,n){while(r.firstChild)r.removeChild(r.firstChild);app(r,n);return r}
function store(s){var st=s,ls=[];return{get:function(){return st},set:function(p){st=Object.assign({},st,typeof p==="function"?p(st):p);
for(var i=0;i<ls.length;i++)try{ls[i](st)}catch(x){console.error("[ui-kit] listener failed",x)}},
subscribe:function(f){ls.push(f);return function(){var j=ls.indexOf(f);if(j>=0)ls.splice(j,1)}}}}
function HttpError(s,b,u){this.name="HttpError";this.status=s;this.body=b;this.url=u;
this.message="HTTP "+s+" for "+u+(b&&b.detail?": "+(typeof b.detail==="string"?b.detail:JSON.stringify(b.detail)):"")}
HttpError.prototype=Object.create(Error.prototype);HttpError.prototype.constructor=HttpError;
function req(m,u,b,o){var op=o||E,c=typeof AbortController!=="undefined"?new AbortController:null,
t=c?setTimeout(function(){c.abort()},op.timeout||1e4):0,init={method:m,headers:{Accept:"application/json"},signal:c?c.signal:void 0};
if(b!==void 0){init.headers["Content-Type"]="application/json";init.body=JSON.stringify(b)}
return fetch(u,init).then(function(r){clearTimeout(t);var ct=r.headers.get("content-type")||"";
var p=ct.indexOf("json")>=0?r.json():r.text();return p.then(function(d){if(!r.ok)throw new HttpError(r.status,d,u);return d})},
function(x){clearTimeout(t);throw x})}
var http={get:function(u,o){return req("GET",u,void 0,o)},post:function(u,b,o){return req("POST",u,b,o)},
put:function(u,b,o){return req("PUT",u,b,o)},del:function(u,o){return req("DELETE",u,void 0,o)},HttpError:HttpError};
var nf={};function money(c,cur,loc){var k=(loc||"de-DE")+"|"+(cur||"EUR");
if(!nf[k])nf[k]=new Intl.NumberFormat(loc||"de-DE",{style:"currency",currency:cur||"EUR"});return nf[k].format((c||0)/100)}
function num(n,loc){return new Intl.NumberFormat(loc||"de-DE").format(n||0)}
function day(s,loc){var d=new Date(s+(s.length===10?"T00:00:00Z":"Z"));
return isNaN(d.getTime())?s:d.toLocaleDateString(loc||"de-DE",{weekday:"short",day:"2-digit",month:"2-digit"})}
function debounce(f,w){var t;return function(){var a=arguments,s=this;clearTimeout(t);t=setTimeout(function(){f.apply(s,a)},w||200)}}
function table(cols,rows,opt){var o=opt||E;return h("table",{class:"ui-table"+(o.dense?" ui-table--dense":"")},
h("thead",null,h("tr",null,cols.map(function(c){return h("th",{class:c.num?"num":null,scope:"col"},c.label)}))),
h("tbody",null,rows.length?rows.map(function(r){return h("tr",{"data-key":o.key?r[o.key]:null},cols.map(function(c){
var v=c.render?c.render(r):r[c.field];return h("td",{class:c.num?"num":null},v)}))}):
h("tr",null,h("td",{colspan:cols.length,class:"empty"},o.empty||"Keine Daten"))))}
function sparkline(vals,w,hh){var W=w||240,Hh=hh||48,mx=Math.max.apply(null,vals.concat([1])),n=vals.length,
st=n>1?W/(n-1):W,pts=vals.map(function(v,i){return(i*st).toFixed(1)+","+(Hh-v/mx*(Hh-4)-2).toFixed(1)}).join(" "),
ns="http://www.w3.org/2000/svg",s=document.createElementNS(ns,"svg"),p=document.createElementNS(ns,"polyline");
s.setAttribute("viewBox","0 0 "+W+" "+Hh);s.setAttribute("class","ui-spark");s.setAttribute("role","img");
p.setAttribute("points",pts);p.setAttribute("fill","none");s.appendChild(p);return s}
function toast(msg,kind){var r=document.getElementById("toasts");if(!r)return;var t=h("div",{class:"ui-toast ui-toast--"+(kind||"info"),role:"status"},msg);
r.appendChild(t);setTimeout(function(){t.classList.add("ui-toast--out");setTimeout(function(){t.remove()},300)},3500)}
g.UiKit=Object.freeze({h:h,mount:mount,store:store,http:http,fmt:{money:money,num:num,day:day},debounce:debounce,table:table,sparkline:sparkline,toast:toast,version:"1.4.2"});
})(typeof window!=="undefined"?window:this);

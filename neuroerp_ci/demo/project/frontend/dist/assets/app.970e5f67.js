/* NeuroERP demo front end — prebuilt app chunk (entry: src/main.js) */
(function(K){"use strict";if(!K){document.body.textContent="UI kit failed to load.";return}
var h=K.h,fmt=K.fmt,http=K.http,API="/api";
var state=K.store({articles:[],selected:null,report:null,days:30,busy:false,error:null,filter:"",lastOrder:null});
function loadArticles(){state.set({busy:true,error:null});
return http.get(API+"/articles?limit=200").then(function(a){state.set({articles:a,busy:false})},
function(e){state.set({busy:false,error:e.message});K.toast("Artikel konnten nicht geladen werden","error")})}
function loadReport(){var d=state.get().days;return http.get(API+"/reports/revenue?days="+d).then(function(r){state.set({report:r})},
function(e){state.set({error:e.message})})}
function selectArticle(id){return http.get(API+"/articles/"+id).then(function(a){state.set({selected:a})},
function(e){K.toast(e.status===404?"Artikel "+id+" existiert nicht":e.message,"error")})}
function placeOrder(ev){ev.preventDefault();var f=ev.target,s=state.get().selected;if(!s)return;
var body={article_id:s.id,quantity:parseInt(f.quantity.value,10),customer:f.customer.value.trim()};
if(!body.customer){K.toast("Bitte einen Kunden angeben","warn");return}
if(!(body.quantity>0)){K.toast("Menge muss größer als 0 sein","warn");return}
f.submit.disabled=true;
http.post(API+"/orders",body).then(function(o){state.set({lastOrder:o});K.toast("Auftrag #"+o.id+" angelegt ("+fmt.money(o.total_cents)+")","ok");
f.reset();return Promise.all([selectArticle(s.id),loadReport()])},
function(e){K.toast(e.status===409?"Nicht genug Bestand":e.message,"error")}).then(function(){f.submit.disabled=false})}
function articleTable(st){var q=st.filter.toLowerCase(),rows=st.articles.filter(function(a){
return!q||a.name.toLowerCase().indexOf(q)>=0||a.sku.toLowerCase().indexOf(q)>=0});
return K.table([{label:"SKU",field:"sku"},{label:"Bezeichnung",render:function(a){
return h("a",{href:"#/articles/"+a.id,onClick:function(e){e.preventDefault();selectArticle(a.id)}},a.name)}},
{label:"Preis",num:true,render:function(a){return fmt.money(a.unit_price_cents)}},
{label:"Bestand",num:true,render:function(a){return fmt.num(a.stock)}}],rows,{key:"id",dense:true,empty:st.busy?"Lade…":"Keine Treffer"})}
function detail(st){var a=st.selected;if(!a)return h("p",{class:"muted"},"Artikel wählen, um einen Auftrag zu erfassen.");
return h("section",{class:"card"},h("h2",null,a.name),h("dl",{class:"kv"},h("dt",null,"SKU"),h("dd",null,a.sku),
h("dt",null,"Preis"),h("dd",null,fmt.money(a.unit_price_cents)),h("dt",null,"Bestand"),h("dd",null,fmt.num(a.stock))),
h("form",{class:"order-form",onSubmit:placeOrder},h("label",null,"Kunde",h("input",{name:"customer",required:true,maxlength:120,autocomplete:"organization"})),
h("label",null,"Menge",h("input",{name:"quantity",type:"number",min:1,max:1000,value:1,required:true})),
h("button",{name:"submit",type:"submit",class:"btn btn--primary"},"Auftrag anlegen")))}
function report(st){var r=st.report;if(!r)return h("p",{class:"muted"},"Umsatzbericht wird geladen…");
var vals=r.rows.map(function(x){return x.revenue_cents});
return h("section",{class:"card"},h("header",{class:"card__head"},h("h2",null,"Umsatz, letzte "+r.days+" Tage"),
h("select",{"aria-label":"Zeitraum",onChange:function(e){state.set({days:+e.target.value});loadReport()}},
[7,30,90].map(function(d){return h("option",{value:d,selected:d===r.days},d+" Tage")}))),
h("p",{class:"kpi"},fmt.money(r.total_cents)),K.sparkline(vals,320,56),
K.table([{label:"Tag",render:function(x){return fmt.day(x.day)}},{label:"Aufträge",num:true,field:"orders"},
{label:"Umsatz",num:true,render:function(x){return fmt.money(x.revenue_cents)}}],r.rows.slice(-10).reverse(),{dense:true}))}
function view(st){return h("div",{class:"layout"},
h("header",{class:"topbar"},h("h1",null,"NeuroERP ",h("span",{class:"tag"},"Demo")),
h("input",{class:"search",type:"search",placeholder:"Artikel suchen…","aria-label":"Artikel suchen",value:st.filter,
onInput:K.debounce(function(e){state.set({filter:e.target.value})},150)})),
st.error?h("div",{class:"alert",role:"alert"},st.error):null,
h("main",{class:"grid"},h("section",{class:"card card--wide"},h("h2",null,"Artikel"),articleTable(st)),
h("aside",null,detail(st),report(st))),
h("footer",{class:"foot muted"},"Build "+(document.documentElement.dataset.build||"dev")+" · UI kit "+K.version))}
var root=document.getElementById("app"),focusSearch=false;
state.subscribe(function(st){var a=document.activeElement;focusSearch=a&&a.classList&&a.classList.contains("search");
K.mount(root,view(st));if(focusSearch){var s=root.querySelector(".search");s.focus();s.setSelectionRange(s.value.length,s.value.length)}});
K.mount(root,view(state.get()));
Promise.all([loadArticles(),loadReport()]).then(function(){var m=/^#\/articles\/(\d+)$/.exec(location.hash);if(m)selectArticle(+m[1])});
})(window.UiKit);

/* sysattest dashboard: progressive enhancement only; every page works without this script. */
/* global document, window */
'use strict';
(function () {
  // Ask before destructive actions (revoking a token, distrusting a key).
  document.addEventListener('submit', function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) event.preventDefault();
  });
  // "/" focuses the package search, as on many sites; Escape leaves it.
  document.addEventListener('keydown', function (event) {
    var search = document.getElementById('q');
    if (!search) return;
    var t = event.target;
    var typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
    if (event.key === '/' && !typing) {
      event.preventDefault();
      search.focus();
    } else if (event.key === 'Escape' && t === search) {
      search.blur();
    }
  });
  // Copy buttons next to a one-time secret.
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () {
      var target = document.getElementById(button.getAttribute('data-copy'));
      if (target && window.navigator.clipboard)
        window.navigator.clipboard.writeText(target.textContent || '');
    });
  });
})();
